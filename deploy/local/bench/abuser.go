package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/trigger-api/trigger-api/deploy/local/devstack/stack"
	"github.com/trigger-api/trigger-api/deploy/local/noisy"
)

// abuserMode makes this binary A's own process in the isolation suite; the arguments after
// it are the ingest, inbox and keys-admin URLs A's own gateway routes to.
const abuserMode = "-noisy-abuser"

// abuserArgs are the arguments that start A's process against st's services.
func abuserArgs(exe string, serviceURLs map[string]string) []string {
	return []string{"nice", "-n", "19", exe, abuserMode, serviceURLs[stack.Ingest], serviceURLs[stack.Inbox], serviceURLs[stack.KeysAdmin]}
}

// runAbuser is A's process. Its calls go through a gateway of its own: through the bench's,
// which shares a process with B's client, the copying of A's maximal reads was B's client's
// garbage to collect, a cost no tenant's client pays another's in a deployment.
func runAbuser(args []string) int {
	up, err := abuserUpstreams(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "noisy abuser:", err)
		return 2
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "noisy abuser:", err)
		return 1
	}
	errLog := log.New(os.Stderr, "gateway: ", log.LstdFlags)
	srv := &http.Server{Handler: stack.NewGateway(up, errLog), ReadHeaderTimeout: 30 * time.Second, ErrorLog: errLog}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	return noisy.AbuserMain(context.Background(), "http://"+ln.Addr().String())
}

func abuserUpstreams(args []string) (stack.Upstreams, error) {
	if len(args) != 3 {
		return stack.Upstreams{}, fmt.Errorf("want the ingest, inbox and keys-admin URLs, got %d arguments", len(args))
	}
	var us [3]*url.URL
	for i, a := range args {
		u, err := url.Parse(a)
		if err != nil || u.Host == "" {
			return stack.Upstreams{}, fmt.Errorf("upstream %q: not an absolute URL", a)
		}
		us[i] = u
	}
	return stack.Upstreams{Ingest: us[0], Inbox: us[1], KeysAdmin: us[2]}, nil
}
