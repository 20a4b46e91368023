package images_test

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

// docker runs the docker CLI against the tests' engine.
type docker struct{ host string }

func (d *docker) env() []string { return []string{"DOCKER_HOST=" + d.host} }

func (d *docker) run(t testing.TB, args ...string) string {
	t.Helper()
	return run(t, "", d.env(), "docker", args...)
}

func (d *docker) exists(t testing.TB, ref string) bool {
	t.Helper()
	cmd := exec.Command("docker", "image", "inspect", "--format", "{{.Id}}", ref)
	cmd.Env = append(os.Environ(), d.env()...)
	return cmd.Run() == nil
}

// importTar makes the image tag from the root filesystem write puts in a tar stream.
func (d *docker) importTar(t testing.TB, tag string, write func(*tar.Writer) error, changes ...string) {
	t.Helper()
	args := []string{"import"}
	for _, c := range changes {
		args = append(args, "--change", c)
	}
	args = append(args, "-", tag)
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), d.env()...)
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

// keepOnly removes the other tags of tag's repository: bases made from inputs that have changed.
func (d *docker) keepOnly(t testing.TB, tag string) {
	t.Helper()
	repo, _, _ := strings.Cut(tag, ":")
	for _, ref := range strings.Fields(d.run(t, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", repo)) {
		if ref != tag {
			d.run(t, "image", "rm", ref)
		}
	}
}

// imageConfig is what the tests read of docker image inspect.
type imageConfig struct {
	Architecture string
	Os           string
	Config       struct {
		User       string
		Entrypoint []string
		Labels     map[string]string
	}
}

func (d *docker) inspect(t testing.TB, ref string) imageConfig {
	t.Helper()
	var out []imageConfig
	if err := json.Unmarshal([]byte(d.run(t, "image", "inspect", ref)), &out); err != nil || len(out) != 1 {
		t.Fatalf("inspect %s: %v", ref, err)
	}
	return out[0]
}

// copyOut copies path out of ref's filesystem without running it (it may be for another
// architecture) into dst.
func (d *docker) copyOut(t testing.TB, ref, path, dst string) {
	t.Helper()
	id := strings.TrimSpace(d.run(t, "create", "--network", "none", ref))
	defer d.run(t, "rm", id)
	d.run(t, "cp", id+":"+path, dst)
}

// run runs name in dir (the current one when empty) with env added, and fails the test with
// its output when it fails.
func run(t testing.TB, dir string, env []string, name string, args ...string) string {
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
