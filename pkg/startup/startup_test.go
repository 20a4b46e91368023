package startup_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/trigger-api/trigger-api/pkg/logging"
	"github.com/trigger-api/trigger-api/pkg/startup"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

type cfg struct {
	logging.Options
	Name   string `envconfig:"SERVICE_TEST_NAME" required:"true" desc:"a name"`
	Secret string `envconfig:"SERVICE_TEST_SECRET" secret:"true" desc:"a secret"`
}

func TestRunLoadsAndCalls(t *testing.T) {
	t.Setenv("TRIGGER_SERVICE_TEST_NAME", "n1")
	t.Setenv("TRIGGER_LOG_LEVEL", "error")
	var got cfg
	err := startup.Run[cfg](context.Background(), "svc", nil, &bytes.Buffer{}, func(_ context.Context, log *zap.Logger, c cfg) error {
		got = c
		return nil
	})
	if err != nil || got.Name != "n1" || got.Level != "error" {
		t.Fatalf("run: %v, cfg %+v", err, got)
	}
}

func TestRunHelpAndErrors(t *testing.T) {
	called := false
	fn := func(context.Context, *zap.Logger, cfg) error { called = true; return nil }
	var out bytes.Buffer
	if err := startup.Run[cfg](context.Background(), "svc", []string{"--help"}, &out, fn); err != nil || called || !strings.Contains(out.String(), "TRIGGER_SERVICE_TEST_NAME") {
		t.Fatalf("--help: err %v, called %v, out %q", err, called, out.String())
	}
	t.Setenv("TRIGGER_SERVICE_TEST_NAME", "") // restored after the test
	os.Unsetenv("TRIGGER_SERVICE_TEST_NAME")
	if err := startup.Run[cfg](context.Background(), "svc", nil, &out, fn); err == nil || called || !strings.Contains(err.Error(), "TRIGGER_SERVICE_TEST_NAME") {
		t.Fatalf("missing setting: err %v, called %v", err, called)
	}
	t.Setenv("TRIGGER_SERVICE_TEST_NAME", "n")
	t.Setenv("TRIGGER_LOG_LEVEL", "loud")
	if err := startup.Run[cfg](context.Background(), "svc", nil, &out, fn); err == nil || called {
		t.Fatalf("bad level: err %v, called %v", err, called)
	}
}

func TestExecDispatchesCommands(t *testing.T) {
	t.Setenv("TRIGGER_SERVICE_TEST_NAME", "n1")
	var ran []string
	cmd := func(name string) func(context.Context, *zap.Logger, cfg) error {
		return func(context.Context, *zap.Logger, cfg) error { ran = append(ran, name); return nil }
	}
	prog := startup.Program{
		Name:     "svc",
		Serve:    startup.Cmd[cfg]("", "serve things", cmd("serve")),
		Commands: []startup.Command{startup.Cmd[cfg]("migrate", "migrate things", cmd("migrate"))},
	}
	for _, args := range [][]string{nil, {"-x"}, {"migrate"}} {
		if err := startup.Exec(context.Background(), prog, args, &bytes.Buffer{}); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	if strings.Join(ran, ",") != "serve,serve,migrate" {
		t.Fatalf("ran %v", ran)
	}
	err := startup.Exec(context.Background(), prog, []string{"migrat"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), `unknown command "migrat"`) || !strings.Contains(err.Error(), "migrate") {
		t.Fatalf("unknown command: %v", err)
	}
	var out bytes.Buffer
	if err := startup.Exec(context.Background(), prog, []string{"--help"}, &out); err != nil || len(ran) != 3 ||
		!strings.Contains(out.String(), "svc migrate") || !strings.Contains(out.String(), "TRIGGER_SERVICE_TEST_NAME") {
		t.Fatalf("--help: %v, ran %v\n%s", err, ran, out.String())
	}
}

func TestVersionFlagPrintsBuildOnly(t *testing.T) {
	called := false
	prog := startup.Program{
		Name:  "svc",
		Serve: startup.Cmd[cfg]("", "serve things", func(context.Context, *zap.Logger, cfg) error { called = true; return nil }),
	}
	for _, args := range [][]string{{"--version"}, {"-version"}, {"-x", "--version"}} {
		var out bytes.Buffer
		if err := startup.Exec(context.Background(), prog, args, &out); err != nil || called {
			t.Fatalf("%v: err %v, served %v", args, err, called)
		}
		// An unstamped test binary: the fallback version, and the toolchain.
		if got := out.String(); !strings.HasPrefix(got, "svc dev") || !strings.Contains(got, runtime.Version()) || strings.Count(got, "\n") != 1 {
			t.Fatalf("%v: printed %q", args, got)
		}
	}
}

func TestRunExportsBuildInfo(t *testing.T) {
	t.Setenv("TRIGGER_SERVICE_TEST_NAME", "n1")
	t.Setenv("TRIGGER_LOG_LEVEL", "error")
	var scraped string
	err := startup.Run[cfg](context.Background(), "svc", nil, &bytes.Buffer{}, func(ctx context.Context, _ *zap.Logger, _ cfg) error {
		rec := httptest.NewRecorder()
		telemetry.FromContext(ctx).Metrics.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		scraped = rec.Body.String()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(scraped, `trigger_build_info{`) || !strings.Contains(scraped, `goversion="`+runtime.Version()+`"`) {
		t.Fatalf("no build info on /metrics:\n%s", scraped)
	}
}

func TestRunLogsBuildAtStart(t *testing.T) {
	t.Setenv("TRIGGER_SERVICE_TEST_NAME", "n1")
	t.Setenv("TRIGGER_LOG_LEVEL", "info")
	// zap's production logger writes to os.Stderr as it is when the logger is built.
	logFile, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = logFile
	err = startup.Run[cfg](context.Background(), "svc", nil, &bytes.Buffer{}, func(context.Context, *zap.Logger, cfg) error { return nil })
	os.Stderr = stderr
	if err != nil {
		t.Fatal(err)
	}
	logs, _ := os.ReadFile(logFile.Name())
	var start map[string]any
	for _, line := range strings.Split(string(logs), "\n") {
		if strings.Contains(line, `"msg":"starting"`) {
			if err := json.Unmarshal([]byte(line), &start); err != nil {
				t.Fatal(err)
			}
		}
	}
	if v, _ := start["version"].(string); !strings.HasPrefix(v, "dev") || start["go_version"] != runtime.Version() || start["commit"] == nil || start["build_date"] == nil {
		t.Fatalf("start-up line without the build: %v\n%s", start, logs)
	}
}
