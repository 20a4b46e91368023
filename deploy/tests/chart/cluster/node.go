package cluster

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// containerdConfig keeps containerd's root, state, sockets, pods' network namespaces and CNI
// configuration in the state directory. restrict_oom_score_adj: the sandbox may not lower its oom_score_adj below the
// parent's here, and without it every pod sandbox fails to start.
const containerdConfig = `version = 2
root = "%[1]s/root"
state = "%[1]s/state"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "%[2]s"
[ttrpc]
  address = ""
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "%[3]s"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "%[4]s"
    conf_dir = "%[1]s/net.d"
    max_conf_num = 1
`

// cniConfig puts pods on the cluster's bridge, addresses from host-local kept in the state
// directory. The bridge plugin enforces no NetworkPolicy.
const cniConfig = `{
  "cniVersion": "1.0.0",
  "name": "trigger-cluster",
  "plugins": [{
    "type": "bridge", "bridge": "` + bridgeName + `", "isGateway": true, "ipMasq": false, "hairpinMode": true,
    "ipam": {"type": "host-local", "dataDir": "%s", "ranges": [[{"subnet": "` + PodCIDR + `", "gateway": "` + Gateway + `"}]],
             "routes": [{"dst": "0.0.0.0/0"}]}
  }]
}
`

func (c *Cluster) startContainerd(ctx context.Context) error {
	bin, err := exec.LookPath("containerd")
	if err != nil {
		return fmt.Errorf("containerd (Debian: containerd, with docker.io): %w", err)
	}
	dir := c.path("containerd")
	if err := os.MkdirAll(filepath.Join(dir, "net.d"), 0o755); err != nil {
		return err
	}
	cni := fmt.Sprintf(cniConfig, filepath.Join(dir, "ipam"))
	if err := os.WriteFile(filepath.Join(dir, "net.d", "10-trigger.conflist"), []byte(cni), 0o644); err != nil {
		return err
	}
	cfg := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(containerdConfig, dir, c.sock, c.opts.PauseImage, c.opts.CNIBin)), 0o644); err != nil {
		return err
	}
	c.cleanups = append(c.cleanups, c.unmountAll)
	p, err := c.start("containerd", bin, "--config", cfg)
	if err != nil {
		return err
	}
	return c.waitFor(ctx, "containerd", func(ctx context.Context) error {
		if err := alive(p); err != nil {
			return err
		}
		_, err := c.ctr(ctx, "version")
		return err
	})
}

// ctr runs ctr against the node's containerd, in the namespace the CRI uses.
func (c *Cluster) ctr(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "ctr", append([]string{"--address", c.sock, "--namespace", "k8s.io"}, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ctr %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (c *Cluster) importImages(ctx context.Context) error {
	return c.ImportImages(ctx, c.opts.Images...)
}

// ImportImages loads image archives (docker save) into the node's containerd, unpacked for its
// snapshotter.
func (c *Cluster) ImportImages(ctx context.Context, archives ...string) error {
	for _, archive := range archives {
		if _, err := c.ctr(ctx, "images", "import", archive); err != nil {
			return err
		}
	}
	return nil
}

// kubeletConfig: cgroup v1 with cgroupfs (no systemd here), the private runtime socket, pod
// logs and volume plugins under the state directory, DNS on the bridge, and no image garbage
// collection or eviction for disk, since no image can be pulled back: on a machine whose disk
// runs low, disk pressure would evict the release's pods and hold their replacements Pending.
const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
port: %[2]d
readOnlyPort: 0
healthzPort: 0
authentication:
  x509: {clientCAFile: %[3]s/ca.crt}
  anonymous: {enabled: false}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
tlsCertFile: %[3]s/kubelet.crt
tlsPrivateKeyFile: %[3]s/kubelet.key
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://%[4]s
clusterDNS: [%[1]s]
clusterDomain: cluster.local
resolvConf: %[5]s/resolv.conf
podLogsDir: %[5]s/pod-logs
volumePluginDir: %[5]s/volume-plugins
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 0%%, nodefs.inodesFree: 0%%, imagefs.available: 0%%, imagefs.inodesFree: 0%%}
podCIDR: %[6]s
serializeImagePulls: false
`

func (c *Cluster) startKubelet(ctx context.Context) error {
	dir := c.path("kubelet")
	if err := os.MkdirAll(filepath.Join(dir, "pod-logs"), 0o755); err != nil {
		return err
	}
	// Pods resolve through clusterDNS only: the host's resolvers are not the cluster's business.
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), nil, 0o644); err != nil {
		return err
	}
	cfg := filepath.Join(dir, "config.yaml")
	body := fmt.Sprintf(kubeletConfig, Gateway, c.ports.kubelet, c.path("pki"), c.sock, dir, PodCIDR)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		return err
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory/kubepods"); os.IsNotExist(err) {
		c.cleanups = append(c.cleanups, removeKubepods)
	}
	if exec.Command("iptables", "-S", "KUBE-FIREWALL").Run() != nil {
		c.cleanups = append(c.cleanups, removeKubeletChains)
	}
	p, err := c.start("kubelet", filepath.Join(c.opts.KubeBin, "kubelet"), "--config", cfg,
		"--kubeconfig", c.Kubeconfig, "--root-dir", filepath.Join(dir, "root"), "--cert-dir", filepath.Join(dir, "pki"),
		"--hostname-override", NodeName, "--node-ip", Gateway, "--v", "1")
	if err != nil {
		return err
	}
	return c.waitFor(ctx, "the node to be Ready", func(ctx context.Context) error {
		if err := alive(p); err != nil {
			return err
		}
		n, err := c.Client.CoreV1().Nodes().Get(ctx, NodeName, getOpts)
		if err != nil {
			return err
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("node %s not Ready", NodeName)
	})
}

// removeKubepods removes the kubepods cgroups the kubelet made under each hierarchy's root, once
// their pods are gone: this cluster's, since none existed before it started.
func removeKubepods() {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods")
	for _, root := range roots {
		var dirs []string
		_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			_ = os.Remove(dirs[i])
		}
	}
}

// removeKubeletChains removes the chains the kubelet adds to the host's tables (KUBE-FIREWALL
// and its canaries), which kube-proxy --cleanup leaves: none existed before this cluster.
func removeKubeletChains() {
	for _, hook := range []string{"INPUT", "OUTPUT"} {
		_ = exec.Command("iptables", "-D", hook, "-j", "KUBE-FIREWALL").Run()
	}
	for _, table := range []string{"filter", "nat", "mangle"} {
		for _, chain := range []string{"KUBE-FIREWALL", "KUBE-KUBELET-CANARY", "KUBE-IPTABLES-HINT"} {
			_ = exec.Command("iptables", "-t", table, "-F", chain).Run()
			_ = exec.Command("iptables", "-t", table, "-X", chain).Run()
		}
	}
}

// startProxy runs kube-proxy in iptables mode. It leaves the host's conntrack sysctls alone and
// serves node ports only on the bridge; its KUBE-* chains are removed again at Stop.
func (c *Cluster) startProxy(ctx context.Context) error {
	bin := filepath.Join(c.opts.KubeBin, "kube-proxy")
	c.cleanups = append(c.cleanups, func() { _ = exec.Command(bin, "--cleanup").Run() })
	_, err := c.start("kube-proxy", bin, "--kubeconfig", c.Kubeconfig, "--hostname-override", NodeName,
		"--proxy-mode", "iptables", "--cluster-cidr", PodCIDR, "--nodeport-addresses", Gateway+"/32",
		"--healthz-bind-address", "127.0.0.1:"+itoa(c.ports.proxyHealth), "--metrics-bind-address", "127.0.0.1:"+itoa(c.ports.proxyMetrics),
		"--conntrack-max-per-core", "0", "--conntrack-tcp-timeout-established", "0", "--conntrack-tcp-timeout-close-wait", "0", "--v", "1")
	return err
}

// corefile serves the cluster's zone from the API, on the bridge address the kubelet gives pods
// as their nameserver. Other names are not answered: nothing in the tests needs them.
const corefile = `cluster.local:53 in-addr.arpa:53 {
    bind %s
    errors
    kubernetes cluster.local in-addr.arpa {
        kubeconfig %s
        pods insecure
    }
}
`

// startDNS runs CoreDNS on the node rather than as a pod: the answer is the same, and it needs
// no image.
func (c *Cluster) startDNS(context.Context) error {
	cfg := c.path("Corefile")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(corefile, Gateway, c.Kubeconfig)), 0o644); err != nil {
		return err
	}
	_, err := c.start("coredns", c.opts.CoreDNS, "-conf", cfg)
	return err
}

// drainPods deletes every pod and waits until the kubelet has torn them down (volumes unmounted,
// sandboxes' network removed by the CNI plugin), so stopping leaves nothing behind.
func (c *Cluster) drainPods() {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	grace := int64(0)
	nss, err := c.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for _, ns := range nss.Items {
		_ = c.Client.CoreV1().Pods(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &grace}, metav1.ListOptions{})
	}
	err = c.waitFor(ctx, "every pod to be gone", func(ctx context.Context) error {
		pods, err := c.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err == nil && len(pods.Items) > 0 {
			err = fmt.Errorf("%d pods left", len(pods.Items))
		}
		return err
	})
	if err != nil {
		c.logf("cluster: %v", err)
	}
}

// killContainers ends every task still running (the shims outlive containerd otherwise) and
// deletes it, so its shim exits.
func (c *Cluster) killContainers() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := c.ctr(ctx, "tasks", "ls", "-q")
	if err != nil {
		return
	}
	for _, id := range strings.Fields(out) {
		_, _ = c.ctr(ctx, "tasks", "kill", "-s", "SIGKILL", id)
		_ = c.waitFor(ctx, "task "+id+" to stop", func(ctx context.Context) error {
			_, err := c.ctr(ctx, "tasks", "delete", id)
			return err
		})
	}
}

// unmountAll lazily unmounts whatever is still mounted under the state directory (overlay
// root filesystems, secret volumes, sandbox /dev/shm), deepest first.
func (c *Cluster) unmountAll() {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], c.dir+"/") {
			points = append(points, fields[4])
		}
	}
	f.Close()
	for i := len(points) - 1; i >= 0; i-- {
		_ = syscall.Unmount(points[i], syscall.MNT_DETACH)
	}
}
