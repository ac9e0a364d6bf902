package main

import (
	"runtime/debug"
	"strings"
)

// version is Herald's release, set when building one:
//
//	go build -ldflags "-X main.version=0.9.0" ./cmd/herald
var version = "dev"

// commit names the commit built from when Go's build information has none,
// as in a build from a source tree without .git (a container build):
//
//	go build -ldflags "-X main.commit=$(git rev-parse --short HEAD)" ./cmd/herald
var commit = ""

// buildVersion describes this binary: its version, the commit it was built
// from (with "modified" when the tree had uncommitted changes) and the Go
// release that built it, e.g. "0.9.0 (commit 97755a0, modified, go1.26.8)".
func buildVersion() string {
	info, _ := debug.ReadBuildInfo() // nil when the binary has none
	return describe(version, commit, info)
}

// describe is buildVersion with its inputs as arguments. The commit recorded
// by the Go toolchain (vcs.revision, vcs.modified) wins over fallback.
func describe(version, fallback string, info *debug.BuildInfo) string {
	rev, modified := fallback, false
	goVersion := ""
	if info != nil {
		goVersion = info.GoVersion
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if len(rev) > 7 {
		rev = rev[:7]
	}
	var details []string
	if rev != "" {
		details = append(details, "commit "+rev)
		if modified {
			details = append(details, "modified")
		}
	}
	if goVersion != "" {
		details = append(details, goVersion)
	}
	if len(details) == 0 {
		return version
	}
	return version + " (" + strings.Join(details, ", ") + ")"
}

// buildCommit is the short commit the binary was built from, "" when unknown.
func buildCommit() string {
	rev := commit
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
	}
	if len(rev) > 7 {
		rev = rev[:7]
	}
	return rev
}
