package cluster_test

import (
	"archive/tar"
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trigger-api/trigger-api/deploy/tests/localimage"
)

// What the pods run. The tag is fixed: the node's containerd is new each run, so the tag never
// names an older image there.
const (
	imageRepository = "trigger-api-local"
	imageTag        = "cluster"
	pauseImage      = "trigger-api-local/pause:cluster"
	curlImage       = "trigger-api-local/curl"
)

// buildImages builds the four components from the Dockerfile through `make images` on the local
// bases, the same way the image tests do, plus the pause image and the demo Job's curl image,
// and saves them all into one archive for the node's containerd.
func buildImages(t *testing.T, root string) string {
	cacheDir := filepath.Join(root, ".cache", "images")
	eng, err := localimage.StartEngine(cacheDir)
	if err != nil {
		t.Fatalf("docker engine: %v", err)
	}
	defer eng.Stop()
	d := &localimage.Docker{Host: eng.Host}
	goImage, runtimeImage := localimage.GoBase(t, d, root, cacheDir), localimage.RuntimeBase(t, d)
	env := []string{"MAKEFLAGS=", "MAKELEVEL=", "MFLAGS=", "DOCKER_HOST=" + eng.Host}
	localimage.Run(t, root, env, "make", "--no-print-directory", "images", "PLATFORMS=linux/amd64",
		"IMAGE_REPOSITORY="+imageRepository, "IMAGE_TAG="+imageTag, "GO_IMAGE="+goImage, "RUNTIME_IMAGE="+runtimeImage,
		"BUILD_NETWORK=none")
	refs := []string{pauseImage, curlImage + ":" + imageTag}
	for _, c := range localimage.Components {
		refs = append(refs, imageRepository+"/"+c+":"+imageTag)
	}
	pauseImageFrom(t, d, root)
	curlImageFrom(t, d)
	archive := filepath.Join(t.TempDir(), "images.tar")
	d.Run(t, append([]string{"save", "-o", archive}, refs...)...)
	return archive
}

// pauseImageFrom builds cluster/pause statically and imports it as the sandbox image.
func pauseImageFrom(t *testing.T, d *localimage.Docker, root string) {
	bin := filepath.Join(t.TempDir(), "pause")
	localimage.Run(t, root, []string{"CGO_ENABLED=0"}, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin,
		"github.com/trigger-api/trigger-api/deploy/tests/chart/cluster/pause")
	d.ImportTar(t, pauseImage, func(tw *tar.Writer) error {
		return localimage.AddTree(tw, bin, "pause", nil)
	}, `ENTRYPOINT ["/pause"]`, "USER 65535:65535")
}

// curlImageFrom stands in for curlimages/curl, which the demo Job runs: busybox for the shell
// and text tools, this machine's curl with the shared libraries it loads, and CA certificates.
func curlImageFrom(t *testing.T, d *localimage.Docker) {
	busybox := localimage.StaticBusybox(t)
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("curl is needed for the demo Job's image (Debian: curl): %v", err)
	}
	files := append([]string{curl, "/etc/ssl/certs/ca-certificates.crt"}, sharedLibraries(t, curl)...)
	d.ImportTar(t, curlImage+":"+imageTag, func(tw *tar.Writer) error {
		for _, f := range files {
			if err := addResolved(tw, f); err != nil {
				return err
			}
		}
		if err := localimage.AddTree(tw, busybox, "bin/busybox", nil); err != nil {
			return err
		}
		for _, applet := range []string{"sh", "sed", "head", "cat", "base64", "tr", "printf", "echo"} {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + applet, Linkname: "busybox", Mode: 0o777}); err != nil {
				return err
			}
		}
		return localimage.AddDir(tw, "tmp", 0o1777, 0)
	}, "ENV PATH=/bin:/usr/bin", "USER 65532:65532")
}

// sharedLibraries lists what ldd says bin loads, the dynamic loader included.
func sharedLibraries(t *testing.T, bin string) []string {
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", bin, err)
	}
	var libs []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		for _, f := range strings.Fields(sc.Text()) {
			if strings.HasPrefix(f, "/") {
				libs = append(libs, f)
			}
		}
	}
	return libs
}

// addResolved writes the file at path under its own path, its content taken through symlinks.
func addResolved(tw *tar.Writer, path string) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	f, err := os.Open(real)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(path, "/"), Mode: int64(info.Mode().Perm()), Size: info.Size()}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}
