package localimage

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Components are the images the Dockerfile builds; ModuleDirs the module each is built from.
var (
	Components = []string{"ingest", "inbox", "keys-admin", "worker"}
	ModuleDirs = []string{"services/ingest", "services/inbox", "services/keys-admin", "worker"}
)

// The bases stand in for golang and distroless/static, which no registry can give this machine.
// Each is imported from a root filesystem the test writes, tagged by a hash of what went in, so
// it is made once and made again only when its inputs change.

// GoBase is a golang-like image: this machine's Go toolchain, busybox for /bin/sh, and the
// modules every component needs as a file:// module proxy, because a build cannot reach the
// module proxy. The Dockerfile needs nothing else of it.
func GoBase(t testing.TB, d *Docker, root, cacheDir string) string {
	goroot := strings.TrimSpace(Run(t, root, nil, "go", "env", "GOROOT"))
	busybox := StaticBusybox(t)
	h := sha256.New()
	fmt.Fprintln(h, readText(t, filepath.Join(goroot, "VERSION")), busybox)
	for _, m := range append([]string{"pkg"}, ModuleDirs...) {
		for _, f := range []string{"go.mod", "go.sum"} {
			h.Write([]byte(readText(t, filepath.Join(root, m, f))))
		}
	}
	tag := "trigger-api-local/golang:" + hex.EncodeToString(h.Sum(nil))[:16]
	if d.Exists(t, tag) {
		return tag
	}
	proxy := moduleProxy(t, root, filepath.Join(cacheDir, "gomod"))
	d.ImportTar(t, tag, func(tw *tar.Writer) error {
		for _, sub := range []string{"VERSION", "go.env", "bin", "lib", "pkg", "src"} {
			if err := AddTree(tw, filepath.Join(goroot, sub), "usr/local/go/"+sub, nil); err != nil {
				return err
			}
		}
		if err := AddTree(tw, busybox, "bin/busybox", nil); err != nil {
			return err
		}
		for _, applet := range []string{"sh", "mkdir", "echo", "cat", "ls", "rm", "env"} {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + applet, Linkname: "busybox", Mode: 0o777}); err != nil {
				return err
			}
		}
		if err := AddDir(tw, "tmp", 0o1777, 0); err != nil {
			return err
		}
		return AddTree(tw, proxy, "goproxy", func(rel string) bool {
			return !strings.HasSuffix(rel, ".lock") && !strings.HasPrefix(rel, "sumdb")
		})
	}, "ENV PATH=/usr/local/go/bin:/go/bin:/bin", "ENV HOME=/root", "ENV GOPATH=/go",
		"ENV GOTOOLCHAIN=local", "ENV GOPROXY=file:///goproxy")
	d.KeepOnly(t, tag)
	return tag
}

// RuntimeBase is what distroless/static:nonroot holds that the binaries use: CA certificates
// (AWS is reached over TLS), a passwd and group naming uid 65532, a /tmp.
func RuntimeBase(t testing.TB, d *Docker) string {
	certs := readText(t, "/etc/ssl/certs/ca-certificates.crt")
	passwd := "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group := "root:x:0:\nnonroot:x:65532:\n"
	sum := sha256.Sum256([]byte(certs + passwd + group))
	tag := "trigger-api-local/static:" + hex.EncodeToString(sum[:])[:16]
	if d.Exists(t, tag) {
		return tag
	}
	d.ImportTar(t, tag, func(tw *tar.Writer) error {
		for _, dir := range []struct {
			name string
			mode int64
			uid  int
		}{{"etc", 0o755, 0}, {"etc/ssl", 0o755, 0}, {"etc/ssl/certs", 0o755, 0}, {"tmp", 0o1777, 0}, {"home", 0o755, 0}, {"home/nonroot", 0o700, 65532}} {
			if err := AddDir(tw, dir.name, dir.mode, dir.uid); err != nil {
				return err
			}
		}
		for name, body := range map[string]string{"etc/passwd": passwd, "etc/group": group, "etc/ssl/certs/ca-certificates.crt": certs} {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
				return err
			}
			if _, err := io.WriteString(tw, body); err != nil {
				return err
			}
		}
		return nil
	})
	d.KeepOnly(t, tag)
	return tag
}

// moduleProxy fills dir, a module cache of its own, with the modules the components need on
// both platforms, taken from this machine's module cache (or its GOPROXY for what that lacks),
// and returns its download tree: a file:// module proxy. -modcacherw, so rm -rf .cache works.
func moduleProxy(t testing.TB, root, dir string) string {
	hostCache := strings.TrimSpace(Run(t, root, nil, "go", "env", "GOMODCACHE"))
	hostProxy := strings.TrimSpace(Run(t, root, nil, "go", "env", "GOPROXY"))
	for _, m := range ModuleDirs {
		for _, arch := range []string{"amd64", "arm64"} {
			Run(t, filepath.Join(root, m), []string{
				"GOWORK=off", "GOOS=linux", "GOARCH=" + arch, "CGO_ENABLED=0", "GOFLAGS=-mod=readonly -modcacherw",
				"GOMODCACHE=" + dir, "GOPROXY=file://" + filepath.Join(hostCache, "cache", "download") + "," + hostProxy,
			}, "go", "list", "-deps", ".")
		}
	}
	return filepath.Join(dir, "cache", "download")
}

// StaticBusybox finds a busybox that needs no shared libraries (Debian's busybox-static).
func StaticBusybox(t testing.TB) string {
	path, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox is needed for the Go base's /bin/sh (Debian: apt-get install busybox-static; .ci/run does): %v", err)
	}
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("%s is linked dynamically; the Go base needs busybox-static", path)
		}
	}
	return path
}

// AddTree writes the file or tree at src into the archive as dst, keeping modes, following
// no symlinks out; keep, when given, filters paths relative to src.
func AddTree(tw *tar.Writer, src, dst string, keep func(rel string) bool) error {
	return filepath.WalkDir(src, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if keep != nil && rel != "." && !keep(rel) {
			if de.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := de.Info()
		if err != nil {
			return err
		}
		var link string
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(filepath.Join(dst, rel))
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
}

func AddDir(tw *tar.Writer, name string, mode int64, uid int) error {
	return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: uid, Gid: uid})
}

func readText(t testing.TB, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSpace(b)) + "\n"
}
