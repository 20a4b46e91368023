package buildinfo

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestResolve(t *testing.T) {
	vcs := func(rev, at, modified string) *debug.BuildInfo {
		return &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: rev}, {Key: "vcs.time", Value: at}, {Key: "vcs.modified", Value: modified},
		}}
	}
	for _, tc := range []struct {
		name    string
		stamped Info
		bi      *debug.BuildInfo
		want    Info
	}{
		{"stamped-wins-over-vcs",
			Info{Version: "v1.2.3", Commit: "abc", Date: "2026-12-05T05:00:00Z"}, vcs("def", "2026-01-01T00:00:00Z", "true"),
			Info{Version: "v1.2.3", Commit: "abc", Date: "2026-12-05T05:00:00Z"}},
		{"unstamped-checkout-takes-vcs",
			Info{}, vcs("def", "2026-01-01T00:00:00Z", "false"),
			Info{Version: "dev", Commit: "def", Date: "2026-01-01T00:00:00Z"}},
		{"unstamped-dirty-checkout",
			Info{}, vcs("def", "2026-01-01T00:00:00Z", "true"),
			Info{Version: "dev-dirty", Commit: "def", Date: "2026-01-01T00:00:00Z"}},
		{"go-install-of-a-tag",
			Info{}, &debug.BuildInfo{Main: debug.Module{Version: "v0.4.0"}},
			Info{Version: "v0.4.0", Commit: Unknown, Date: Unknown}},
		{"nothing-recorded",
			Info{}, nil,
			Info{Version: "dev", Commit: Unknown, Date: Unknown}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.want.GoVersion, tc.want.Platform = runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH
			if got := resolve(tc.stamped, tc.bi); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestString(t *testing.T) {
	i := Info{Version: "v1.2.3", Commit: "abc", Date: "2026-12-05T05:00:00Z", GoVersion: "go1.26.8", Platform: "linux/arm64"}
	if got, want := i.String(), "v1.2.3 (commit abc, built 2026-12-05T05:00:00Z, go1.26.8 linux/arm64)"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
