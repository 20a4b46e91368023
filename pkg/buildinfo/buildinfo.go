// Package buildinfo is what the build stamped into the binary: its version, the commit it was
// built from and when. The Makefile and the Dockerfile set them with the linker:
//
//	-ldflags "-X github.com/trigger-api/trigger-api/pkg/buildinfo.version=v1.2.3
//	          -X github.com/trigger-api/trigger-api/pkg/buildinfo.commit=<sha>
//	          -X github.com/trigger-api/trigger-api/pkg/buildinfo.date=<RFC 3339>"
//
// pkg is a module of its own that each binary's module replaces, so this import path is the
// one to stamp whether the build uses the workspace or GOWORK=off.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by -ldflags -X; strings, because -X sets nothing else.
var (
	version string
	commit  string
	date    string
)

// Unknown stands for what neither the linker nor the toolchain recorded.
const Unknown = "unknown"

// Info describes one build.
type Info struct {
	Version   string // e.g. v1.2.3, v1.2.3-4-gabcdef0-dirty; "dev" for an unstamped build
	Commit    string // full commit hash, or Unknown
	Date      string // RFC 3339, or Unknown
	GoVersion string // the toolchain, e.g. go1.26.8
	Platform  string // GOOS/GOARCH the binary runs on
}

// Get returns this binary's build: what was stamped, and for what was not, what the toolchain
// recorded (a go install of a tagged module has a version, a build from a checkout with VCS
// stamping has a commit).
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return resolve(Info{Version: version, Commit: commit, Date: date}, bi)
}

func resolve(stamped Info, bi *debug.BuildInfo) Info {
	out := stamped
	out.GoVersion = runtime.Version()
	out.Platform = runtime.GOOS + "/" + runtime.GOARCH
	var modified bool
	if bi != nil {
		if out.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			out.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if out.Commit == "" {
					out.Commit = s.Value
				}
			case "vcs.time":
				if out.Date == "" {
					out.Date = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if out.Version == "" {
		out.Version = "dev"
		if modified {
			out.Version += "-dirty"
		}
	}
	if out.Commit == "" {
		out.Commit = Unknown
	}
	if out.Date == "" {
		out.Date = Unknown
	}
	return out
}

// String is the line --version prints after the binary's name.
func (i Info) String() string {
	return fmt.Sprintf("%s (commit %s, built %s, %s %s)", i.Version, i.Commit, i.Date, i.GoVersion, i.Platform)
}
