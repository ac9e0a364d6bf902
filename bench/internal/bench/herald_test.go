package bench

import (
	"context"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startHerald builds the Herald of this repository (herald-bench sits in
// its bench/ directory) and serves the development app (app-id, app-key,
// app-secret) on a free loopback port. It returns the WebSocket base and
// the server's pid. It skips the test where there is no Herald to build:
// herald-bench's module on its own, or no go command.
func startHerald(t *testing.T) (string, int) {
	t.Helper()
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "herald", "main.go")); err != nil {
		t.Skipf("no Herald to build at %s: %v", root, err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build Herald with")
	}
	exe := filepath.Join(t.TempDir(), "herald")
	build := exec.Command(goBin, "build", "-o", exe, "./cmd/herald")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building Herald: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(exe, "--addr", addr, "--log-level", "warn")
	// Only the flags configure it: no HERALD_* variable of the test's
	// environment leaks in.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HERALD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("Herald exited at start: %v\n%s", err, log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("Herald does not listen on %s: %v\n%s", addr, err, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "ws://" + addr, cmd.Process.Pid
}

// TestHeraldREST runs the rest scenario against a real Herald: single
// triggers and batches, every subscriber getting every event in order, and
// the server's CPU per request and per event.
func TestHeraldREST(t *testing.T) {
	url, pid := startHerald(t)
	for _, tc := range []struct {
		name     string
		batch    int
		requests int
	}{{"events", 1, 400}, {"batch_events", 10, 60}} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{Scenario: ScenarioREST, URL: url, PID: pid, Conns: 20, Requests: tc.requests, Batch: tc.batch,
				Publishers: 4, Timeout: time.Minute}
			res, err := Run(context.Background(), o)
			if err != nil || res == nil {
				t.Fatalf("Run: %v", err)
			}
			r, d := res.REST, res.Delivery
			events := int64(tc.requests * tc.batch)
			if !res.Complete || r.Requests != int64(tc.requests) || r.Events != events || r.Errors != 0 {
				t.Fatalf("complete %v, rest %+v, errors %v", res.Complete, r, res.Errors)
			}
			if !d.Complete || d.Unique != uint64(20*events) || d.Missing+d.Duplicate+d.OutOfOrder+d.Unexpected != 0 {
				t.Errorf("delivery %+v", d)
			}
			if !strings.HasSuffix(r.Endpoint, "/"+tc.name) || r.RequestsPerSecond <= 0 || r.Latency.Count != uint64(tc.requests) {
				t.Errorf("rest %+v", r)
			}
			if res.Server == nil || res.Server.PID != pid || math.Abs(r.ServerCPUPerEventUS*float64(tc.batch)-r.ServerCPUPerRequestUS) > 1e-6*r.ServerCPUPerRequestUS {
				t.Errorf("server %+v, rest %+v", res.Server, r)
			}
		})
	}
	// Herald's batch limit is Pusher's, 10: a larger batch is refused at
	// the warm-up.
	res, err := Run(context.Background(), Options{Scenario: ScenarioREST, URL: url, Requests: 10, Batch: 11, Timeout: time.Minute})
	if err == nil || res == nil || res.Complete || !strings.Contains(err.Error(), "400") {
		t.Fatalf("batch of 11: err %v, result %+v", err, res)
	}
}
