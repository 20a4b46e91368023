package images_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
)

type workflow struct {
	On struct {
		Push struct {
			Tags []string `yaml:"tags"`
		} `yaml:"push"`
	} `yaml:"on"`
	Permissions map[string]string `yaml:"permissions"`
	Jobs        map[string]struct {
		Env   map[string]string `yaml:"env"`
		Steps []struct {
			Name string            `yaml:"name"`
			Run  string            `yaml:"run"`
			Env  map[string]string `yaml:"env"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

// What the expressions of a run for the tag v1.2.3 of trigger-api/trigger-api give. make -n
// writes nothing, so the workspace need not exist.
var githubContext = map[string]string{
	"github.ref_name":         "v1.2.3",
	"github.sha":              stampCommit,
	"github.repository_owner": "trigger-api",
	"github.workspace":        "/home/runner/work/trigger-api/trigger-api",
	"github.token":            "token",
	"github.actor":            "release-bot",
	"secrets.GITHUB_TOKEN":    "token",
}

var expression = regexp.MustCompile(`\$\{\{\s*([^}]*?)\s*\}\}`)

// makeCall is one make command line of the workflow with the environment its step gives it.
type makeCall struct {
	step string
	args []string
	env  []string
}

// TestReleaseWorkflowCallsMakeTargetsThatExist reads .github/workflows/release.yaml, which
// cannot run here, and dry-runs (make -n) each make command it runs with the variables the
// workflow would give it, then checks that what it would do publishes what it says.
func TestReleaseWorkflowCallsMakeTargetsThatExist(t *testing.T) {
	var wf workflow
	src, err := os.ReadFile(filepath.Join(repoRoot, ".github", "workflows", "release.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(src, &wf); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(wf.On.Push.Tags, []string{"v*"}) || wf.Permissions["packages"] != "write" {
		t.Errorf("the workflow runs on tags %v with permissions %v; want v* and packages: write", wf.On.Push.Tags, wf.Permissions)
	}
	calls := makeCalls(t, wf)
	dry := map[string]string{} // target -> make -n output
	for _, c := range calls {
		out := flat(makeIn(t, c.env, append([]string{"-n"}, c.args...)...))
		for _, a := range c.args {
			if !strings.Contains(a, "=") {
				dry[a] = out
			}
		}
	}
	for target, wants := range map[string][]string{
		"images": {"build --builder release --platform linux/amd64,linux/arm64", "--push", "--build-arg VERSION=v1.2.3",
			"--build-arg COMMIT=" + stampCommit, "--build-arg BUILD_DATE=" + stampDate,
			"--metadata-file /home/runner/work/trigger-api/trigger-api/.cache/release/worker.json", "-t ghcr.io/trigger-api/keys-admin:v1.2.3 ."},
		"chart-push":     {"helm package charts/trigger-api --version 1.2.3 --app-version v1.2.3", "helm push ", "trigger-api-1.2.3.tgz oci://ghcr.io/trigger-api/charts"},
		"buildx-builder": {"create --name release --driver docker-container"},
	} {
		out, ok := dry[target]
		if !ok {
			t.Errorf("the workflow never runs make %s", target)
			continue
		}
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Errorf("make -n %s, as the workflow runs it, lacks %q:\n%s", target, w, out)
			}
		}
	}
}

// flat joins a recipe's continued lines and collapses its blanks, so checks read the commands
// rather than their layout.
func flat(out string) string {
	var lines []string
	for _, l := range strings.Split(strings.ReplaceAll(out, "\\\n", " "), "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	return strings.Join(lines, "\n")
}

// makeCalls finds every line of a run: script that starts with make, with the job's and the
// step's env expanded, plus BUILD_DATE, which a step writes to GITHUB_ENV.
func makeCalls(t *testing.T, wf workflow) []makeCall {
	expand := func(v string) string {
		return expression.ReplaceAllStringFunc(v, func(m string) string {
			val, ok := githubContext[expression.FindStringSubmatch(m)[1]]
			if !ok {
				t.Errorf("the test does not know the expression %s", m)
			}
			return val
		})
	}
	var calls []makeCall
	for _, job := range wf.Jobs {
		for _, step := range job.Steps {
			env := []string{"BUILD_DATE=" + stampDate}
			for _, m := range []map[string]string{job.Env, step.Env} {
				for k, v := range m {
					env = append(env, k+"="+expand(v))
				}
			}
			for _, line := range strings.Split(step.Run, "\n") {
				fields := strings.Fields(line)
				if len(fields) > 0 && fields[0] == "make" {
					calls = append(calls, makeCall{step: step.Name, args: fields[1:], env: env})
				}
			}
		}
	}
	if len(calls) == 0 {
		t.Fatal("the workflow runs no make target")
	}
	return calls
}
