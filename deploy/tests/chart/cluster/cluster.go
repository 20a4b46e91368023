// Package cluster runs a single-node Kubernetes for tests: etcd, the control plane, containerd,
// the kubelet, kube-proxy and CoreDNS as child processes, on loopback and a bridge of its own.
// Everything it writes lives in its state directory, its bridge and its iptables chains; the
// machine's own containerd, CNI configuration and kubelet paths are never used.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/trigger-api/trigger-api/pkg/ddblocal"
	"github.com/trigger-api/trigger-api/pkg/proc"
)

// The cluster's addresses. Fixed rather than picked, because the CNI configuration, the
// certificates and the kubelet's DNS setting all name them; the lock keeps one cluster per machine.
const (
	bridgeName  = "trigger0"
	PodCIDR     = "10.213.0.0/24"
	Gateway     = "10.213.0.1" // the bridge's address: the node, the API server and DNS as pods see them
	ServiceCIDR = "10.214.0.0/24"
	apiService  = "10.214.0.1"
	NodeName    = "trigger-node"
	lockPath    = "/tmp/trigger-api-cluster.lock"
)

// Options say where the cluster finds its binaries and keeps its state.
type Options struct {
	// KubeBin holds kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy
	// and kubectl; CoreDNS is the coredns binary. etcd, containerd, runc and ctr come from PATH,
	// the CNI plugins from CNIBin.
	KubeBin, CoreDNS, CNIBin string
	// Dir is the state directory; the caller removes it. Short: containerd's sockets live in it.
	Dir string
	// Images are image archives (docker save) imported into the node's containerd before the
	// kubelet starts; one of them must hold PauseImage.
	Images     []string
	PauseImage string
	Log        io.Writer
}

// Cluster is a running cluster.
type Cluster struct {
	Kubeconfig string
	Config     *rest.Config
	Client     kubernetes.Interface

	opts     Options
	dir      string
	ports    ports
	procs    []*proc.Process // in start order; stopped in reverse
	cleanups []func()        // in setup order; run in reverse
	sock     string          // containerd's socket
}

type ports struct{ etcd, etcdPeer, apiserver, kubelet, proxyHealth, proxyMetrics, cm, sched int }

// Start brings the whole cluster up and returns once the node is Ready, the default service
// account exists and DNS answers for the API server's Service. On failure it stops what it
// started.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the cluster needs root (network, mounts, containerd)")
	}
	c = &Cluster{opts: opts, dir: opts.Dir, sock: filepath.Join(opts.Dir, "containerd", "c.sock")}
	defer func() {
		if err != nil {
			c.Stop()
			c = nil
		}
	}()
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"lock", c.lock}, {"ports", c.pickPorts}, {"network", c.setupNetwork}, {"certificates", c.certificates},
		{"etcd", c.startEtcd}, {"kube-apiserver", c.startAPIServer}, {"controllers", c.startControllers},
		{"containerd", c.startContainerd}, {"images", c.importImages}, {"kubelet", c.startKubelet},
		{"kube-proxy", c.startProxy}, {"coredns", c.startDNS}, {"ready", c.waitUsable},
	}
	for _, s := range steps {
		began := time.Now()
		if err := s.run(ctx); err != nil {
			return c, fmt.Errorf("%s: %w", s.name, err)
		}
		c.logf("cluster: %-15s %6.1fs", s.name, time.Since(began).Seconds())
	}
	return c, nil
}

func (c *Cluster) logf(format string, args ...any) {
	if c.opts.Log != nil {
		fmt.Fprintf(c.opts.Log, format+"\n", args...)
	}
}

func (c *Cluster) path(elem ...string) string {
	return filepath.Join(append([]string{c.dir}, elem...)...)
}

// lock keeps a second cluster off this machine while this one runs: they would share the
// bridge, its addresses and port 53 on it.
func (c *Cluster) lock(context.Context) error {
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return err
	}
	c.cleanups = append(c.cleanups, func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() })
	return nil
}

func (c *Cluster) pickPorts(context.Context) error {
	p, err := ddblocal.FreePorts(8)
	if err != nil {
		return err
	}
	c.ports = ports{p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]}
	return nil
}

// start runs a child whose output goes to <dir>/logs/<name>.log.
func (c *Cluster) start(name, path string, args ...string) (*proc.Process, error) {
	if err := os.MkdirAll(c.path("logs"), 0o755); err != nil {
		return nil, err
	}
	p, err := proc.Start(proc.Options{Name: name, Path: path, Args: args, LogPath: c.path("logs", name+".log")})
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, p)
	return p, nil
}

// Stop ends every child in reverse order of start, then undoes the network and mounts.
func (c *Cluster) Stop() {
	// Without the controllers and the scheduler no pod is made again while the rest are deleted.
	for _, p := range c.procs {
		if p.Name() == "kube-scheduler" || p.Name() == "kube-controller-manager" {
			_ = p.Stop(10 * time.Second)
		}
	}
	if c.Client != nil {
		c.drainPods()
	}
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		if p.Name() == "containerd" {
			c.killContainers()
		}
		if err := p.Stop(20 * time.Second); err != nil && !p.StopRequested() {
			c.logf("cluster: stop %s: %v", p.Name(), err)
		}
	}
	c.procs = nil
	for i := len(c.cleanups) - 1; i >= 0; i-- {
		c.cleanups[i]()
	}
	c.cleanups = nil
}

// LogTail is the end of a child's log, for a failure's message.
func (c *Cluster) LogTail(name string, n int) string {
	lines := proc.TailFile(c.path("logs", name+".log"), n)
	out := ""
	for _, l := range lines {
		out += l + "\n"
	}
	return out
}

// waitUsable waits for what every workload needs besides the node: the controller manager's
// default service account and root CA, and DNS.
func (c *Cluster) waitUsable(ctx context.Context) error {
	if err := c.waitFor(ctx, "the default service account", func(ctx context.Context) error {
		_, err := c.Client.CoreV1().ServiceAccounts("default").Get(ctx, "default", getOpts)
		return err
	}); err != nil {
		return err
	}
	return c.waitFor(ctx, "DNS for kubernetes.default.svc", func(ctx context.Context) error {
		addrs, err := Resolver().LookupHost(ctx, "kubernetes.default.svc.cluster.local")
		if err == nil && (len(addrs) != 1 || addrs[0] != apiService) {
			err = fmt.Errorf("answered %v", addrs)
		}
		return err
	})
}

// Resolver asks the cluster's DNS, as pods do.
func Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort(Gateway, "53"))
	}}
}

// waitFor polls check until it succeeds or ctx ends; the last error says why it did not.
func (c *Cluster) waitFor(ctx context.Context, what string, check func(context.Context) error) error {
	return Poll(ctx, what, 200*time.Millisecond, check)
}

// Poll calls check every interval until it returns nil or ctx ends.
func Poll(ctx context.Context, what string, interval time.Duration, check func(context.Context) error) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %v)", what, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// alive fails once p has exited, so a wait on a dead child ends at once with its log.
func alive(p *proc.Process) error {
	if p.Exited() {
		return fmt.Errorf("%s exited: %v\n%s", p.Name(), p.Err(), p.Tail(30))
	}
	return nil
}

func (c *Cluster) connect() error {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = 100, 200
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	c.Config, c.Client = cfg, cs
	return nil
}

func itoa(i int) string { return strconv.Itoa(i) }
