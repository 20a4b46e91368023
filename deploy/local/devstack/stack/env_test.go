package stack

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trigger-api/trigger-api/pkg/apikey"
	"github.com/trigger-api/trigger-api/pkg/ddblocal"
)

func TestEnvFileRoundTripsAndIsPrivate(t *testing.T) {
	acme, _ := apikey.New("acme")
	globex, _ := apikey.New("demo-globex-x1y2")
	want := Env{
		GatewayURL:    "http://127.0.0.1:8080",
		AdminToken:    `it's "quoted" $HOME \ and spaced`,
		WorkerBin:     "/tmp/bin dir/worker",
		JaegerURL:     "http://127.0.0.1:16686",
		PrometheusURL: "http://127.0.0.1:9090",
		Keys:          map[string]string{"acme": acme.String(), "demo-globex-x1y2": globex.String()},
	}
	path := filepath.Join(t.TempDir(), "env")
	if err := WriteEnvFile(path, want); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	got, err := ReadEnvFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.GatewayURL != want.GatewayURL || got.AdminToken != want.AdminToken || got.WorkerBin != want.WorkerBin || got.JaegerURL != want.JaegerURL ||
		got.PrometheusURL != want.PrometheusURL ||
		len(got.Keys) != 2 || got.Keys["acme"] != acme.String() || got.Keys["demo-globex-x1y2"] != globex.String() {
		t.Errorf("read back %+v, want %+v", got, want)
	}

	// The same file sourced by a shell gives the same values.
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatalf("sh: %v", err)
	}
	out, err := exec.Command(sh, "-c", `. "$1"; printf '%s\n' "$ADMIN_TOKEN" "$API_KEY_DEMO_GLOBEX_X1Y2"`, "sh", path).Output()
	if err != nil {
		t.Fatalf("sourcing the env file: %v", err)
	}
	if lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n"); len(lines) != 2 ||
		lines[0] != want.AdminToken || lines[1] != globex.String() {
		t.Errorf("a shell read %q", out)
	}
}

func TestReadEnvFileExplainsAMissingStack(t *testing.T) {
	_, err := ReadEnvFile(filepath.Join(t.TempDir(), "env"))
	if err == nil || !strings.Contains(err.Error(), "make run") {
		t.Errorf("error %v, want one pointing at `make run`", err)
	}
}

func TestReadEnvFileRejectsDamage(t *testing.T) {
	cases := map[string]string{
		"unquoted":      "GATEWAY_URL=http://x\nADMIN_TOKEN='t'\nWORKER_BIN='w'\n",
		"unterminated":  "GATEWAY_URL='http://x\nADMIN_TOKEN='t'\nWORKER_BIN='w'\n",
		"missing-admin": "GATEWAY_URL='http://x'\nWORKER_BIN='w'\n",
		"bad-key":       "GATEWAY_URL='http://x'\nADMIN_TOKEN='t'\nWORKER_BIN='w'\nAPI_KEY_ACME='tenant_acme_live_nope'\n",
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "env")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := ReadEnvFile(path); err == nil {
				t.Error("damaged env file accepted")
			}
		})
	}
}

func TestOptionsRefuseANonLoopbackGateway(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:8080", ":8080", "192.0.2.1:8080", "localhost:8080"} {
		o := Options{Root: t.TempDir(), GatewayAddr: addr}
		if err := o.complete(); err == nil {
			t.Errorf("%s accepted", addr)
		}
	}
	for _, tc := range []struct{ token, want string }{
		{"dev:short", "32"},
		{strings.Repeat("u", 40), "no id"},
	} {
		o := Options{Root: t.TempDir(), GatewayAddr: "127.0.0.1:0", AdminTokens: []string{tc.token}}
		if err := o.complete(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("admin token refused for %q: %v", tc.want, err)
		}
	}
	o := Options{Root: t.TempDir(), GatewayAddr: "127.0.0.1:0"}
	if err := o.complete(); err != nil || !strings.HasPrefix(o.AdminTokens[0], "dev:") {
		t.Errorf("generated admin token %q, %v: want a named one", o.AdminTokens, err)
	}
}

// With AWSChain the children reach DynamoDB with the caller's AWS settings, never DynamoDB
// Local's fixed credentials; without it they get DynamoDB Local's and none of the caller's.
func TestChildrenGetTheCallersAWSSettingsOnlyWithAWSChain(t *testing.T) {
	t.Setenv("AWS_PROFILE", "dev")
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", "https://dynamodb.eu-west-1.amazonaws.com")
	const endpoint = "https://dynamodb.eu-west-1.amazonaws.com"
	for _, chain := range []bool{true, false} {
		s := &Stack{opts: Options{DynamoDBEndpoint: endpoint, AWSChain: chain}}
		env, err := s.environ(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		has := func(kv string) bool { return slices.Contains(env, kv) }
		if !has("TRIGGER_DYNAMODB_ENDPOINT=" + endpoint) {
			t.Errorf("chain %v: no endpoint in %v", chain, env)
		}
		if has("AWS_PROFILE=dev") != chain || has("AWS_REGION=eu-west-1") != chain {
			t.Errorf("chain %v: the caller's profile and region passed: %v", chain, !chain)
		}
		if has("AWS_ACCESS_KEY_ID="+ddblocal.AccessKey) == chain {
			t.Errorf("chain %v: DynamoDB Local's credentials passed: %v", chain, chain)
		}
		if slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "AWS_ENDPOINT_URL") }) {
			t.Errorf("chain %v: the SDK's endpoint variable reached a child", chain)
		}
	}
}
