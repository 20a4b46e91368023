package k8stest

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	moduleLine = regexp.MustCompile(`(?m)^module\s+(\S+)`)
	pkgReplace = regexp.MustCompile(`github\.com/trigger-api/trigger-api/pkg\s+=>\s+(\S+)`)
)

// TestDockerfileBuildsEveryComponent reads the Dockerfile's COMPONENT switch: each component maps
// to a module of the workspace, built statically and run as non-root on distroless.
func TestDockerfileBuildsEveryComponent(t *testing.T) {
	src := string(readFile(t, "Dockerfile"))
	arms := regexp.MustCompile(`(?m)^\s*([a-z|-]+)\) dir="([^"]+)"`).FindAllStringSubmatch(src, -1)
	dirs := map[string]string{}
	for _, arm := range arms {
		for _, c := range strings.Split(arm[1], "|") {
			dirs[c] = strings.ReplaceAll(arm[2], "${COMPONENT}", c)
		}
	}
	for _, c := range serviceComponents {
		dir, ok := dirs[c]
		if !ok {
			t.Errorf("the Dockerfile cannot build %s", c)
			continue
		}
		gomod := string(readFile(t, filepath.Join(dir, "go.mod")))
		if m := moduleLine.FindStringSubmatch(gomod); m == nil || m[1] != "github.com/trigger-api/trigger-api/"+dir {
			t.Errorf("%s builds from %s, whose go.mod declares %v", c, dir, m)
		}
		// GOWORK=off: pkg comes only through the module's replace, which must point at pkg.
		m := pkgReplace.FindStringSubmatch(gomod)
		if m == nil {
			t.Errorf("%s: go.mod has no replace for pkg; GOWORK=off would fetch it", c)
		} else if filepath.Clean(filepath.Join(dir, m[1])) != "pkg" {
			t.Errorf("%s: pkg is replaced by %s, outside the build context", c, m[1])
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "GOWORK=off", "USER 65532:65532"} {
		if !strings.Contains(src, want) {
			t.Errorf("the Dockerfile lacks %s", want)
		}
	}
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(src, -1)
	runtime := froms[len(froms)-1][1]
	if runtime == "${RUNTIME_IMAGE}" {
		runtime = regexp.MustCompile(`ARG RUNTIME_IMAGE=(\S+)`).FindStringSubmatch(src)[1]
	}
	if !strings.Contains(runtime, "distroless/static") || !strings.HasSuffix(runtime, ":nonroot") {
		t.Errorf("runtime image %s: want distroless static, nonroot", runtime)
	}

	// The context is an allow-list; it must let in what the switch builds.
	ignore := string(readFile(t, ".dockerignore"))
	for _, dir := range dirs {
		top := strings.SplitN(dir, "/", 2)[0]
		if !strings.Contains(ignore, "!"+top+"/") {
			t.Errorf(".dockerignore keeps %s out of the build context", top)
		}
	}
	if !strings.Contains(ignore, "!pkg/") {
		t.Error(".dockerignore keeps pkg out of the build context")
	}
}
