package adminapi_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
	"github.com/trigger-api/trigger-api/pkg/httpx"
	"github.com/trigger-api/trigger-api/pkg/tenant/dynamo"
	"github.com/trigger-api/trigger-api/services/keys-admin/adminapi"
)

// secretMount lays out a directory the way the kubelet mounts a Secret: the file is a symlink
// through ..data, and an update swaps ..data to a new directory in one rename.
type secretMount struct {
	dir     string
	version int
}

func newSecretMount(t *testing.T, content string) *secretMount {
	t.Helper()
	m := &secretMount{dir: t.TempDir()}
	m.update(t, content)
	if err := os.Symlink(filepath.Join("..data", "admin-tokens"), m.path()); err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *secretMount) path() string { return filepath.Join(m.dir, "admin-tokens") }

func (m *secretMount) update(t *testing.T, content string) {
	t.Helper()
	m.version++
	version := fmt.Sprintf("..v%d", m.version)
	if err := os.Mkdir(filepath.Join(m.dir, version), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(m.dir, version, "admin-tokens"), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(m.dir, "..data_tmp")
	if err := os.Symlink(version, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(m.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if m.version > 1 {
		// The kubelet removes the old version, so a reader holding the old inode would be left
		// with a deleted file.
		if err := os.RemoveAll(filepath.Join(m.dir, fmt.Sprintf("..v%d", m.version-1))); err != nil {
			t.Fatal(err)
		}
	}
}

// eventually waits until cond holds, polling; the deadline only bounds a failing test.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still not %s after 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTokenFileRotation(t *testing.T) {
	t.Parallel()
	oldToken := "ops-alice:" + strings.Repeat("o", 40)
	newToken := "ops-alice:" + strings.Repeat("n", 40)
	ciToken := "ci:" + strings.Repeat("c", 40)
	mount := newSecretMount(t, "# admins\n"+oldToken+"\n"+ciToken+"\n")

	core, logs := observer.New(zapcore.InfoLevel)
	tokens, err := adminapi.LoadTokenFile(zap.New(core), mount.path())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tokens.Watch(ctx, 10*time.Millisecond)
	}()
	t.Cleanup(func() { cancel(); <-done })

	tables := shared.Tables(t)
	ready := func(context.Context) error { return nil }
	e := &env{router: adminapi.NewRouter(zap.NewNop(), dynamo.New(shared.Client, tables), tokens, ready, nil)}
	status := func(token string) int {
		return e.do(t, request{method: "GET", path: "/admin/tenants", token: str(token)}).status
	}
	for _, tok := range []string{oldToken, ciToken} {
		if got := status(tok); got != http.StatusOK {
			t.Fatalf("token from the file at start: %d, want 200", got)
		}
	}

	t.Run("rotated-old-401-new-200", func(t *testing.T) {
		mount.update(t, newToken+","+ciToken)
		eventually(t, "refusing the rotated-out token", func() bool { return status(oldToken) == http.StatusUnauthorized })
		if got := status(newToken); got != http.StatusOK {
			t.Fatalf("new token: %d, want 200", got)
		}
		if got := status(ciToken); got != http.StatusOK {
			t.Fatalf("unchanged token: %d, want 200", got)
		}
	})

	t.Run("invalid-file-keeps-last-good-set-and-logs", func(t *testing.T) {
		unnamed := strings.Repeat("u", 40)
		mount.update(t, newToken+"\n"+unnamed+"\n")
		eventually(t, "logging the invalid file", func() bool {
			return logs.FilterMessage("admin tokens file invalid; the last good tokens stay in use").Len() == 1
		})
		for _, tok := range []string{newToken, ciToken} {
			if got := status(tok); got != http.StatusOK {
				t.Fatalf("token of the last good set after a bad update: %d, want 200", got)
			}
		}
		if got := status(unnamed); got != http.StatusUnauthorized {
			t.Fatalf("token of the refused set: %d, want 401", got)
		}
	})

	t.Run("emptied-file-keeps-last-good-set", func(t *testing.T) {
		mount.update(t, "")
		eventually(t, "logging the empty file", func() bool {
			return logs.FilterMessage("admin tokens file invalid; the last good tokens stay in use").Len() == 2
		})
		if got := status(newToken); got != http.StatusOK {
			t.Fatalf("token of the last good set after emptying the file: %d, want 200", got)
		}
	})

	t.Run("fixed-file-taken", func(t *testing.T) {
		mount.update(t, ciToken)
		eventually(t, "refusing the removed token", func() bool { return status(newToken) == http.StatusUnauthorized })
		if got := status(ciToken); got != http.StatusOK {
			t.Fatalf("remaining token: %d, want 200", got)
		}
	})

	t.Run("logs-name-ids-never-secrets", func(t *testing.T) {
		if logs.FilterMessage("admin tokens reloaded").Len() < 2 {
			t.Fatalf("reloads not logged: %v", logs.All())
		}
		for _, l := range logs.All() {
			text := l.Message + fmt.Sprint(l.ContextMap())
			for _, tok := range []string{oldToken, newToken, ciToken} {
				if strings.Contains(text, strings.SplitN(tok, ":", 2)[1]) {
					t.Fatalf("log line holds a secret: %s", text)
				}
			}
		}
	})
}

func TestRunTokenSettings(t *testing.T) {
	t.Parallel()
	good := newSecretMount(t, adminToken+"\n").path()
	bad := newSecretMount(t, strings.Repeat("u", 40)+"\n").path()
	for _, tc := range []struct {
		name string
		file string
		env  []string
		want string // "" serves
	}{
		{"file-serves", good, nil, ""},
		{"env-serves", "", []string{adminToken}, ""},
		{"both-refused", good, []string{adminToken}, "not both"},
		{"file-missing-refused", filepath.Join(t.TempDir(), "nope"), nil, "no such file"},
		{"file-unnamed-token-refused", bad, nil, "has no id"},
		{"env-unnamed-token-refused", "", []string{strings.Repeat("u", 40)}, "TRIGGER_ADMIN_TOKENS: admin token 1 of 1 has no id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			if tc.want == "" {
				cancel() // a canceled context serves and returns at once: the start got through
			}
			defer cancel()
			addr := "127.0.0.1:0"
			if tc.want != "" {
				addr = "256.0.0.1:1" // nothing could bind it: a refusal must come before serving
			}
			cfg := adminapi.Config{
				HTTPAddr:          addr,
				ServerConfig:      httpx.ServerConfig{ShutdownTimeout: time.Second},
				Settings:          ddb.Settings{Region: ddblocal.Region, Endpoint: shared.Endpoint},
				AdminTokensFile:   tc.file,
				AdminTokens:       tc.env,
				AdminTokensReload: time.Second,
			}
			err := adminapi.Run(ctx, zap.NewNop(), cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused to start: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want a refusal about %q", err, tc.want)
			}
		})
	}
}
