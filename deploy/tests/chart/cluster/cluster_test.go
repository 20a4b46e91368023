package cluster_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/trigger-api/trigger-api/deploy/tests/chart/cluster"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
)

// TestChartOnACluster installs the chart on a real single-node cluster and checks what rendering
// cannot: pods start and become Ready under the restricted Pod Security Standard, `helm test`
// passes through the Services, the NetworkPolicies select real pods, a rolling restart under load
// loses nothing, an upgrade goes through and an uninstall leaves nothing. The steps share one
// release, so each runs only if the one before passed.
func TestChartOnACluster(t *testing.T) {
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	began := time.Now()
	archive := buildImages(t, root)
	t.Logf("images built and saved in %.1fs", time.Since(began).Seconds())

	// DynamoDB Local runs on the node; pods reach it on the bridge address, where it listens too.
	ddb, err := ddblocal.Start(ctx, ddblocal.Options{LogPath: filepath.Join(t.TempDir(), "dynamodb-local.log")})
	if err != nil {
		t.Fatalf("DynamoDB Local: %v", err)
	}
	defer ddb.Stop()
	_, port, _ := cutLast(ddb.Endpoint, ":")

	c := startCluster(t, ctx, root, archive)
	r := newRelease(t, c, root, "http://"+cluster.Gateway+":"+port)
	steps := []struct {
		name string
		run  func(*testing.T, context.Context)
	}{
		{"install-every-deployment-available-under-restricted", r.install},
		{"helm-test-runs-the-demo-through-the-services", r.helmTest},
		{"network-policies-select-real-pods", r.networkPolicies},
		{"tenant-rate-shared-among-replicas", r.rateShared},
		{"rolling-restart-under-load-loses-nothing", r.rollingRestart},
		{"upgrade-with-changed-values", r.upgrade},
		{"uninstall-leaves-nothing", r.uninstall},
	}
	for _, s := range steps {
		if !t.Run(s.name, func(t *testing.T) { s.run(t, ctx) }) {
			r.dump(t, ctx)
			return
		}
	}
}

func startCluster(t *testing.T, ctx context.Context, root, archive string) *cluster.Cluster {
	bin := filepath.Join(root, ".cache", "bin")
	kube := filepath.Join(bin, "kubernetes")
	for _, f := range []string{filepath.Join(kube, "kubelet"), filepath.Join(bin, "coredns")} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%v: `make test-cluster` builds the cluster's binaries first", err)
		}
	}
	// Short: containerd's socket and its shims' paths must fit in 108 bytes.
	dir, err := os.MkdirTemp("", "tc-")
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	c, err := cluster.Start(ctx, cluster.Options{
		KubeBin: kube, CoreDNS: filepath.Join(bin, "coredns"), CNIBin: cniBin(t), Dir: dir,
		Images: []string{archive}, PauseImage: pauseImage, Log: testLog{t},
	})
	if err != nil {
		logs := ""
		for _, n := range []string{"kube-apiserver", "containerd", "kubelet", "coredns"} {
			logs += "--- " + n + "\n" + tailOf(dir, n)
		}
		os.RemoveAll(dir)
		t.Fatalf("start the cluster: %v\n%s", err, logs)
	}
	t.Logf("cluster up in %.1fs (state in %s)", time.Since(began).Seconds(), dir)
	t.Cleanup(func() {
		began := time.Now()
		c.Stop()
		if !t.Failed() {
			os.RemoveAll(dir)
		}
		t.Logf("cluster stopped in %.1fs", time.Since(began).Seconds())
	})
	return c
}

func tailOf(dir, name string) string {
	b, _ := os.ReadFile(filepath.Join(dir, "logs", name+".log"))
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(b) + "\n"
}

// cniBin is where Debian's containernetworking-plugins puts bridge and host-local.
func cniBin(t *testing.T) string {
	for _, d := range []string{"/usr/lib/cni", "/opt/cni/bin"} {
		if _, err := os.Stat(filepath.Join(d, "bridge")); err == nil {
			return d
		}
	}
	t.Fatal("no CNI bridge plugin (Debian: containernetworking-plugins; .ci/run installs it)")
	return ""
}

func repoRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		if filepath.Dir(dir) == dir {
			t.Fatal("no go.work above the working directory")
		}
		dir = filepath.Dir(dir)
	}
}

func cutLast(s, sep string) (string, string, bool) {
	for i := len(s) - len(sep); i >= 0; i-- {
		if s[i:i+len(sep)] == sep {
			return s[:i], s[i+len(sep):], true
		}
	}
	return s, "", false
}

// testLog writes the cluster's progress lines into the test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Log(string(trimNL(b)))
	return len(b), nil
}

func trimNL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		return b[:n-1]
	}
	return b
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s" }

var _ = fmt.Sprint
