package stack

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPrometheusConfigPassesPromtool: the configuration the dev stack and the Prometheus test
// share is one Prometheus accepts (promtool, from the same package as prometheus, checks it;
// a missing promtool fails), with one job per component holding its replicas.
func TestPrometheusConfigPassesPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is needed (Debian's prometheus package ships it): ", err)
	}
	cfg := PrometheusConfig(1500*time.Millisecond, []ScrapeTarget{
		{Job: Ingest, Addr: "127.0.0.1:40001"}, {Job: Inbox, Addr: "127.0.0.1:40002"},
		{Job: Ingest, Addr: "127.0.0.1:40003"}, {Job: Worker, Addr: "127.0.0.1:40004"},
	})
	dir := t.TempDir()
	args, err := PrometheusCommand(dir, "127.0.0.1:9999", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(args, " "), "--enable-feature=exemplar-storage") {
		t.Errorf("arguments %v: exemplar storage is off", args)
	}
	path := filepath.Join(dir, "prometheus.yml")
	if out, err := exec.Command(promtool, "check", "config", path).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s\n%s", err, out, cfg)
	}
	written, _ := os.ReadFile(path)
	for _, want := range []string{
		`job_name: "ingest"`, `targets: ["127.0.0.1:40001", "127.0.0.1:40003"]`,
		`job_name: "inbox"`, `job_name: "worker"`, "scrape_interval: 1500ms",
	} {
		if !strings.Contains(string(written), want) {
			t.Errorf("config lacks %s:\n%s", want, written)
		}
	}
	if _, err := PrometheusCommand(dir, "0.0.0.0:9090", cfg); err == nil {
		t.Error("a Prometheus on every interface was accepted")
	}
}
