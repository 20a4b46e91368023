package stack

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/trigger-api/trigger-api/pkg/apikey"
)

// Env is what a client of a running stack needs: where the gateway is, the admin token, the
// worker binary and each tenant's key. `run` writes it to a file that `demo` reads.
type Env struct {
	GatewayURL string
	AdminToken string
	WorkerBin  string
	JaegerURL  string // Jaeger's query API; empty when the stack runs without it
	// PrometheusURL is Prometheus's UI and API; empty when the stack runs without it.
	PrometheusURL string
	Keys          map[string]string // tenant id → API key
}

// Names in the env file. They are shell variables too: `set -a; . .cache/devstack/env` gives a
// shell $GATEWAY_URL, $ADMIN_TOKEN and $API_KEY_ACME for curl.
const (
	envGateway   = "GATEWAY_URL"
	envAdmin     = "ADMIN_TOKEN"
	envWorkerBin = "WORKER_BIN"
	envJaeger    = "JAEGER_URL"
	envProm      = "PROMETHEUS_URL"
	envKeyPrefix = "API_KEY_"
)

func keyVar(tenant string) string {
	return envKeyPrefix + strings.ToUpper(strings.ReplaceAll(tenant, "-", "_"))
}

// WriteEnvFile writes env to path, readable by its owner only since it holds secrets. The file
// is replaced whole, so a reader never sees half of it.
func WriteEnvFile(path string, env Env) error {
	var b strings.Builder
	b.WriteString("# The running dev stack (go run ./deploy/local/devstack run); removed when it stops.\n")
	b.WriteString("# Holds secrets: an admin token and tenant API keys for this local stack only.\n")
	line := func(k, v string) { fmt.Fprintf(&b, "%s=%s\n", k, shellQuote(v)) }
	line(envGateway, env.GatewayURL)
	line(envAdmin, env.AdminToken)
	line(envWorkerBin, env.WorkerBin)
	if env.JaegerURL != "" {
		line(envJaeger, env.JaegerURL)
	}
	if env.PrometheusURL != "" {
		line(envProm, env.PrometheusURL)
	}
	tenants := make([]string, 0, len(env.Keys))
	for t := range env.Keys {
		tenants = append(tenants, t)
	}
	slices.Sort(tenants)
	for _, t := range tenants {
		line(keyVar(t), env.Keys[t])
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".env-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(b.String()); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ReadEnvFile reads what WriteEnvFile wrote.
func ReadEnvFile(path string) (Env, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Env{}, fmt.Errorf("%s does not exist: start the stack first with `make run` (go run ./deploy/local/devstack run)", path)
		}
		return Env{}, err
	}
	defer f.Close()
	env := Env{Keys: map[string]string{}}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		k, quoted, ok := strings.Cut(text, "=")
		if !ok {
			return Env{}, fmt.Errorf("%s:%d: not NAME=value", path, n)
		}
		v, err := shellUnquote(quoted)
		if err != nil {
			return Env{}, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		switch {
		case k == envGateway:
			env.GatewayURL = v
		case k == envAdmin:
			env.AdminToken = v
		case k == envWorkerBin:
			env.WorkerBin = v
		case k == envJaeger:
			env.JaegerURL = v
		case k == envProm:
			env.PrometheusURL = v
		case strings.HasPrefix(k, envKeyPrefix):
			// The tenant id is in the key itself; the variable name is only for shells.
			key, err := apikey.Parse(v)
			if err != nil {
				return Env{}, fmt.Errorf("%s:%d: %s: %w", path, n, k, err)
			}
			env.Keys[key.TenantID] = v
		}
	}
	if err := sc.Err(); err != nil {
		return Env{}, err
	}
	if env.GatewayURL == "" || env.AdminToken == "" || env.WorkerBin == "" {
		return Env{}, fmt.Errorf("%s lacks %s, %s or %s", path, envGateway, envAdmin, envWorkerBin)
	}
	return env, nil
}

// shellQuote single-quotes v so that sh reads it back unchanged whatever it contains.
func shellQuote(v string) string {
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

func shellUnquote(s string) (string, error) {
	var b strings.Builder
	for s != "" {
		if s[0] == '\\' && len(s) > 1 && s[1] == '\'' {
			b.WriteByte('\'')
			s = s[2:]
			continue
		}
		if s[0] != '\'' {
			return "", errors.New("value is not single-quoted")
		}
		end := strings.IndexByte(s[1:], '\'')
		if end < 0 {
			return "", errors.New("unterminated quote")
		}
		b.WriteString(s[1 : 1+end])
		s = s[2+end:]
	}
	return b.String(), nil
}
