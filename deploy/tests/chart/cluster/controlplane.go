package cluster

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var getOpts = metav1.GetOptions{}

// setupNetwork makes the bridge the CNI plugin attaches pods to, with the node's address on it,
// before anything binds that address. Forwarding is on while the cluster runs: a pod's packet to
// a Service address is routed through the node and DNATed back onto the bridge.
func (c *Cluster) setupNetwork(context.Context) error {
	// A bridge left by a run that was killed: the lock says no cluster uses it now.
	_ = exec.Command("ip", "link", "del", bridgeName).Run()
	for _, args := range [][]string{
		{"link", "add", bridgeName, "type", "bridge"},
		{"addr", "add", Gateway + "/24", "dev", bridgeName},
		{"link", "set", bridgeName, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	c.cleanups = append(c.cleanups, func() { _ = exec.Command("ip", "link", "del", bridgeName).Run() })
	const forward = "/proc/sys/net/ipv4/ip_forward"
	was, err := os.ReadFile(forward)
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(was)) != "1" {
		if err := os.WriteFile(forward, []byte("1\n"), 0o644); err != nil {
			return err
		}
		c.cleanups = append(c.cleanups, func() { _ = os.WriteFile(forward, was, 0o644) })
	}
	return nil
}

// certificates issues the serving certificates and one client certificate, in system:masters,
// that every component and the tests use: the cluster has no other users.
func (c *Cluster) certificates(context.Context) error {
	p, err := newPKI(c.path("pki"))
	if err != nil {
		return err
	}
	apiNames := []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"}
	ips := []net.IP{net.ParseIP(Gateway), net.ParseIP(apiService), net.ParseIP("127.0.0.1")}
	if err := p.issue("apiserver", "kube-apiserver", "", apiNames, ips); err != nil {
		return err
	}
	if err := p.issue("kubelet", NodeName, "", []string{NodeName}, []net.IP{net.ParseIP(Gateway)}); err != nil {
		return err
	}
	if err := p.issue("admin", "trigger-cluster-admin", "system:masters", nil, nil); err != nil {
		return err
	}
	c.Kubeconfig = c.path("admin.kubeconfig")
	if err := p.kubeconfig(c.Kubeconfig, "https://"+net.JoinHostPort(Gateway, itoa(c.ports.apiserver)), "admin"); err != nil {
		return err
	}
	return c.connect()
}

func (c *Cluster) pki(name string) string { return c.path("pki", name) }

func (c *Cluster) startEtcd(ctx context.Context) error {
	etcd, err := exec.LookPath("etcd")
	if err != nil {
		return fmt.Errorf("etcd (Debian: etcd-server; .ci/run installs it): %w", err)
	}
	client := "http://127.0.0.1:" + itoa(c.ports.etcd)
	peer := "http://127.0.0.1:" + itoa(c.ports.etcdPeer)
	p, err := c.start("etcd", etcd, "--name", "trigger", "--data-dir", c.path("etcd"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "trigger="+peer, "--log-level", "warn")
	if err != nil {
		return err
	}
	return c.waitFor(ctx, "etcd", func(ctx context.Context) error {
		if err := alive(p); err != nil {
			return err
		}
		return httpOK(ctx, http.DefaultClient, client+"/health")
	})
}

func (c *Cluster) startAPIServer(ctx context.Context) error {
	p, err := c.start("kube-apiserver", filepath.Join(c.opts.KubeBin, "kube-apiserver"),
		"--etcd-servers", "http://127.0.0.1:"+itoa(c.ports.etcd),
		"--bind-address", Gateway, "--advertise-address", Gateway, "--secure-port", itoa(c.ports.apiserver),
		"--service-cluster-ip-range", ServiceCIDR,
		"--tls-cert-file", c.pki("apiserver.crt"), "--tls-private-key-file", c.pki("apiserver.key"),
		"--client-ca-file", c.pki("ca.crt"),
		"--kubelet-client-certificate", c.pki("admin.crt"), "--kubelet-client-key", c.pki("admin.key"),
		// The node name is no DNS name here; its address is.
		"--kubelet-preferred-address-types", "InternalIP",
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", c.pki("sa.key"), "--service-account-signing-key-file", c.pki("sa.key"),
		"--authorization-mode", "Node,RBAC", "--enable-priority-and-fairness=false",
		"--profiling=false", "--v", "1")
	if err != nil {
		return err
	}
	return c.waitFor(ctx, "kube-apiserver /readyz", func(ctx context.Context) error {
		if err := alive(p); err != nil {
			return err
		}
		return c.Client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error()
	})
}

// startControllers runs the controller manager and the scheduler. Their own serving ports are
// on loopback: nothing here scrapes them.
func (c *Cluster) startControllers(context.Context) error {
	if _, err := c.start("kube-controller-manager", filepath.Join(c.opts.KubeBin, "kube-controller-manager"),
		"--kubeconfig", c.Kubeconfig, "--authentication-kubeconfig", c.Kubeconfig, "--authorization-kubeconfig", c.Kubeconfig,
		"--bind-address", "127.0.0.1", "--secure-port", itoa(c.ports.cm), "--leader-elect=false",
		"--service-account-private-key-file", c.pki("sa.key"), "--root-ca-file", c.pki("ca.crt"),
		"--use-service-account-credentials", "--service-cluster-ip-range", ServiceCIDR,
		"--cluster-cidr", PodCIDR, "--allocate-node-cidrs=false", "--v", "1"); err != nil {
		return err
	}
	_, err := c.start("kube-scheduler", filepath.Join(c.opts.KubeBin, "kube-scheduler"),
		"--kubeconfig", c.Kubeconfig, "--authentication-kubeconfig", c.Kubeconfig, "--authorization-kubeconfig", c.Kubeconfig,
		"--bind-address", "127.0.0.1", "--secure-port", itoa(c.ports.sched), "--leader-elect=false", "--v", "1")
	return err
}

func httpOK(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}
