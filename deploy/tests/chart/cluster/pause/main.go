// Command pause is the test cluster's sandbox image: it holds a pod's namespaces open until the
// runtime stops it. No registry can give this machine registry.k8s.io/pause.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
