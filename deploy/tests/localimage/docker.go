package localimage

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Docker runs the docker CLI against the tests' engine.
type Docker struct{ Host string }

func (d *Docker) Env() []string { return []string{"DOCKER_HOST=" + d.Host} }

func (d *Docker) Run(t testing.TB, args ...string) string {
	t.Helper()
	return Run(t, "", d.Env(), "docker", args...)
}

func (d *Docker) Exists(t testing.TB, ref string) bool {
	t.Helper()
	cmd := exec.Command("docker", "image", "inspect", "--format", "{{.Id}}", ref)
	cmd.Env = append(os.Environ(), d.Env()...)
	return cmd.Run() == nil
}

// ImportTar makes the image tag from the root filesystem write puts in a tar stream.
func (d *Docker) ImportTar(t testing.TB, tag string, write func(*tar.Writer) error, changes ...string) {
	t.Helper()
	args := []string{"import"}
	for _, c := range changes {
		args = append(args, "--change", c)
	}
	args = append(args, "-", tag)
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), d.Env()...)
	pr, pw := io.Pipe()
	cmd.Stdin = pr
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(pw)
	werr := write(tw)
	if werr == nil {
		werr = tw.Close()
	}
	pw.CloseWithError(werr)
	if err := cmd.Wait(); err != nil || werr != nil {
		t.Fatalf("docker import %s: %v %v\n%s", tag, werr, err, out.String())
	}
}

// KeepOnly removes the other tags of tag's repository: bases made from inputs that have changed.
func (d *Docker) KeepOnly(t testing.TB, tag string) {
	t.Helper()
	repo, _, _ := strings.Cut(tag, ":")
	for _, ref := range strings.Fields(d.Run(t, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", repo)) {
		if ref != tag {
			d.Run(t, "image", "rm", ref)
		}
	}
}

// ImageConfig is what the tests read of docker image inspect.
type ImageConfig struct {
	Architecture string
	Os           string
	Config       struct {
		User       string
		Entrypoint []string
		Labels     map[string]string
	}
}

func (d *Docker) Inspect(t testing.TB, ref string) ImageConfig {
	t.Helper()
	var out []ImageConfig
	if err := json.Unmarshal([]byte(d.Run(t, "image", "inspect", ref)), &out); err != nil || len(out) != 1 {
		t.Fatalf("inspect %s: %v", ref, err)
	}
	return out[0]
}

// CopyOut copies path out of ref's filesystem without running it (it may be for another
// architecture) into dst.
func (d *Docker) CopyOut(t testing.TB, ref, path, dst string) {
	t.Helper()
	id := strings.TrimSpace(d.Run(t, "create", "--network", "none", ref))
	defer d.Run(t, "rm", id)
	d.Run(t, "cp", id+":"+path, dst)
}

// Run runs name in dir (the current one when empty) with env added, and fails the test with
// its output when it fails.
func Run(t testing.TB, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}
