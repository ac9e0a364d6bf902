package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestDescribe(t *testing.T) {
	vcs := func(rev, modified string) *debug.BuildInfo {
		info := &debug.BuildInfo{GoVersion: "go1.26.8"}
		if rev != "" {
			info.Settings = append(info.Settings, debug.BuildSetting{Key: "vcs", Value: "git"},
				debug.BuildSetting{Key: "vcs.revision", Value: rev})
		}
		if modified != "" {
			info.Settings = append(info.Settings, debug.BuildSetting{Key: "vcs.modified", Value: modified})
		}
		return info
	}
	const rev = "97755a0c1d2e3f405162738495a6b7c8d9e0f1a2"
	tests := []struct {
		name, version, fallback string
		info                    *debug.BuildInfo
		want                    string
	}{
		{"modified tree", "0.9.0-dev", "", vcs(rev, "true"), "0.9.0-dev (commit 97755a0, modified, go1.26.8)"},
		{"clean tree", "0.9.0", "", vcs(rev, "false"), "0.9.0 (commit 97755a0, go1.26.8)"},
		{"no vcs information", "dev", "", vcs("", ""), "dev (go1.26.8)"},
		{"fallback commit", "0.9.0", "1a2b3c4d5e", vcs("", ""), "0.9.0 (commit 1a2b3c4, go1.26.8)"},
		{"vcs beats the fallback", "0.9.0", "1a2b3c4", vcs(rev, "false"), "0.9.0 (commit 97755a0, go1.26.8)"},
		{"no build information", "dev", "", nil, "dev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := describe(tt.version, tt.fallback, tt.info); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestVersionFlag builds herald the way a release is built, with the version
// and commit set by -ldflags, and runs it.
func TestVersionFlag(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	exe := buildHerald(t)
	env := cleanEnv()
	want := "herald 1.2.3-test (commit abcdef0, " + runtime.Version() + ")\n"

	for _, flag := range []string{"--version", "-version"} {
		cmd := exec.Command(exe, flag)
		// A version check reads no configuration, not even a missing file.
		cmd.Env = append(env, "HERALD_CONFIG=/nonexistent/herald.yaml")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", flag, err)
		}
		if string(out) != want {
			t.Errorf("%s printed %q, want %q", flag, out, want)
		}
	}

	help := exec.Command(exe, "--help")
	help.Env = env
	out, err := help.CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "-version") || !strings.Contains(string(out), "-addr") {
		t.Errorf("--help does not list -version and -addr:\n%s", out)
	}

	// The first line a starting node prints names the build.
	srv, line := startHerald(t, exe, "--addr", "127.0.0.1:0", "--log-level", "error")
	if prefix := "Herald 1.2.3-test (commit abcdef0, " + runtime.Version() + ") listening on 127.0.0.1:"; !strings.HasPrefix(line, prefix) {
		t.Errorf("first line %q, want it to start with %q", line, prefix)
	}
	srv.Process.Signal(syscall.SIGTERM)
	if err := srv.Wait(); err != nil {
		t.Errorf("herald after SIGTERM: %v", err)
	}
}

// buildHerald builds the command, stamped as version 1.2.3-test of commit
// abcdef0123, and returns the binary's path.
func buildHerald(t *testing.T) string {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "herald")
	build := exec.Command("go", "build", "-buildvcs=false", "-o", exe,
		"-ldflags", "-X main.version=1.2.3-test -X main.commit=abcdef0123", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return exe
}

// startHerald runs the binary with args and a clean environment and
// returns it with the first line it printed. The process is killed when
// the test ends, if it still runs.
func startHerald(t *testing.T, exe string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	srv := exec.Command(exe, args...)
	srv.Env = cleanEnv()
	stdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
	}()
	select {
	case line := <-lines:
		return srv, line
	case <-time.After(10 * time.Second):
		t.Fatal("no line from herald within 10s")
		return nil, ""
	}
}

// cleanEnv is the test's environment without HERALD_* variables, so that
// none configures the binary under test.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HERALD_") {
			env = append(env, kv)
		}
	}
	return env
}
