package images_test

import (
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/trigger-api/trigger-api/deploy/tests/localimage"
)

// What the tests stamp. Fixed rather than git describe and the clock, so a second run over the
// same sources is all cache hits.
const (
	stampVersion = "v0.0.0-images-test"
	stampCommit  = "0123456789abcdef0123456789abcdef01234567"
	stampDate    = "2026-01-02T03:04:05Z"
)

var (
	repoRoot string
	eng      *localimage.Engine
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	var err error
	if repoRoot, err = findRoot(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cacheDir := filepath.Join(repoRoot, ".cache", "images")
	if eng, err = localimage.StartEngine(cacheDir); err != nil {
		fmt.Fprintln(os.Stderr, "docker engine:", err)
		return 1
	}
	defer eng.Stop()
	code := m.Run()
	eng.Prune()
	return code
}

func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.work above the working directory")
		}
		dir = parent
	}
}

// makeIn runs make at the root against the tests' engine, as a person would.
func makeIn(t testing.TB, env []string, args ...string) string {
	t.Helper()
	// A make above this test (make test) must not pass its flags or job server down.
	env = append([]string{"MAKEFLAGS=", "MAKELEVEL=", "MFLAGS=", "DOCKER_HOST=" + eng.Host}, env...)
	return localimage.Run(t, repoRoot, env, "make", append([]string{"--no-print-directory"}, args...)...)
}

// buildArgs stamp the build and cut its network: the modules come from the Go base.
func buildArgs() []string {
	return []string{"VERSION=" + stampVersion, "COMMIT=" + stampCommit, "BUILD_DATE=" + stampDate, "BUILD_NETWORK=none"}
}

// TestImagesForThisMachineRunAndReportTheirBuild builds every component for linux/amd64
// through `make images` from the local bases and runs each image's --version.
func TestImagesForThisMachineRunAndReportTheirBuild(t *testing.T) {
	d := &localimage.Docker{Host: eng.Host}
	goImage, runtimeImage := localimage.GoBase(t, d, repoRoot, filepath.Join(repoRoot, ".cache", "images")), localimage.RuntimeBase(t, d)
	platform := "linux/" + runtime.GOARCH
	makeIn(t, nil, append(buildArgs(), "images", "PLATFORMS="+platform, "IMAGE_REPOSITORY=trigger-api-test",
		"IMAGE_TAG=host", "GO_IMAGE="+goImage, "RUNTIME_IMAGE="+runtimeImage)...)
	for _, c := range localimage.Components {
		ref := "trigger-api-test/" + c + ":host"
		got := strings.TrimSpace(d.Run(t, "run", "--rm", "--network", "none", ref, "--version"))
		want := fmt.Sprintf("%s %s (commit %s, built %s, %s %s)", c, stampVersion, stampCommit, stampDate, runtime.Version(), platform)
		if got != want {
			t.Errorf("%s --version:\n got %q\nwant %q", ref, got, want)
		}
		cfg := d.Inspect(t, ref)
		if cfg.Config.User != "65532:65532" || cfg.Os+"/"+cfg.Architecture != platform {
			t.Errorf("%s: user %q, platform %s/%s", ref, cfg.Config.User, cfg.Os, cfg.Architecture)
		}
		for k, v := range map[string]string{"version": stampVersion, "revision": stampCommit, "created": stampDate, "title": "trigger-api-" + c} {
			if got := cfg.Config.Labels["org.opencontainers.image."+k]; got != v {
				t.Errorf("%s: label %s = %q, want %q", ref, k, got, v)
			}
		}
	}
}

// TestArm64ImageIsCrossCompiled builds the worker for linux/arm64 on scratch (the build stage
// cross-compiles, so no emulation is needed) and reads the binary out of the image: an arm64
// ELF with the stamp in it. It cannot run here.
func TestArm64ImageIsCrossCompiled(t *testing.T) {
	d := &localimage.Docker{Host: eng.Host}
	goImage := localimage.GoBase(t, d, repoRoot, filepath.Join(repoRoot, ".cache", "images"))
	ref := "trigger-api-test/worker:arm64"
	makeIn(t, nil, append(buildArgs(), "image-worker", "PLATFORMS=linux/arm64", "IMAGE_REPOSITORY=trigger-api-test",
		"IMAGE_TAG=arm64", "GO_IMAGE="+goImage, "RUNTIME_IMAGE=scratch")...)
	if cfg := d.Inspect(t, ref); cfg.Os != "linux" || cfg.Architecture != "arm64" {
		t.Fatalf("%s is for %s/%s", ref, cfg.Os, cfg.Architecture)
	}
	bin := filepath.Join(t.TempDir(), "app")
	d.CopyOut(t, ref, "/app", bin)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 {
		t.Errorf("/app is for %s", f.Machine)
	}
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if settings["GOARCH"] != "arm64" || settings["CGO_ENABLED"] != "0" {
		t.Errorf("/app built with %v", settings)
	}
	body, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{stampVersion, stampCommit, stampDate} {
		if !strings.Contains(string(body), s) {
			t.Errorf("/app does not hold the stamp %q", s)
		}
	}
}

// TestHostBuildReportsItsStamp builds a binary on this machine with the linker flags make
// computes for `make build` (GO_LDFLAGS) and runs its --version.
func TestHostBuildReportsItsStamp(t *testing.T) {
	ldflags := strings.TrimSpace(makeIn(t, nil, append(buildArgs(), "-s", "--eval", "print-ldflags: ; @echo '$(GO_LDFLAGS)'", "print-ldflags")...))
	bin := filepath.Join(t.TempDir(), "keys-admin")
	localimage.Run(t, repoRoot, nil, "go", "build", "-ldflags", ldflags, "-o", bin, "./services/keys-admin")
	got := strings.TrimSpace(localimage.Run(t, "", nil, bin, "--version"))
	want := fmt.Sprintf("keys-admin %s (commit %s, built %s, %s linux/%s)", stampVersion, stampCommit, stampDate, runtime.Version(), runtime.GOARCH)
	if got != want {
		t.Errorf("--version:\n got %q\nwant %q", got, want)
	}
}

// TestMakeImagesDefaults dry-runs make images as someone would type it: both platforms, the
// tag from git describe, loaded rather than pushed.
func TestMakeImagesDefaults(t *testing.T) {
	describe := strings.TrimSpace(localimage.Run(t, repoRoot, nil, "git", "describe", "--tags", "--always", "--dirty"))
	out := flat(makeIn(t, nil, "-n", "images"))
	for _, want := range []string{"--platform linux/amd64,linux/arm64", "--load", "--build-arg VERSION=" + describe,
		"-t trigger-api/ingest:" + describe + " .", "-t trigger-api/worker:" + describe + " ."} {
		if !strings.Contains(out, want) {
			t.Errorf("make -n images lacks %q:\n%s", want, out)
		}
	}
	if out := flat(makeIn(t, nil, "-n", "image-inbox", "PUSH=1", "IMAGE_TAG=v9", "PLATFORMS=linux/arm64")); !strings.Contains(out, "--platform linux/arm64") ||
		!strings.Contains(out, "--push") || strings.Contains(out, "--load") || !strings.Contains(out, "-t trigger-api/inbox:v9 .") {
		t.Errorf("make -n image-inbox PUSH=1 IMAGE_TAG=v9 PLATFORMS=linux/arm64:\n%s", out)
	}
}
