package main

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/testkit/redistest"
	"github.com/redis/rueidis"
)

// A node whose id another process holds exits with status 1, saying so
// in an error line that names the id: at start, once it has waited for
// the claim long enough (here a second and a refresh), and while serving,
// once another process took its id over.
func TestNodeIDOfAnotherProcessExits1(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	rs := redistest.Start(t)
	raw, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{rs.Addr()}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	const claim = "herald:claim:6:node-a"
	exe := buildHerald(t)
	run := func(t *testing.T, started func()) string {
		t.Helper()
		cmd := exec.Command(exe, "--addr", "127.0.0.1:0", "--redis-url", rs.URL(), "--node-id", "node-a", "--log-level", "warn")
		cmd.Env = append(cleanEnv(), "HERALD_REDIS_NODE_TTL=1s", "HERALD_REDIS_REFRESH_INTERVAL=250ms")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if started != nil {
			started()
		}
		select {
		case err := <-done:
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("herald exited with %v, want status 1\n%s", err, stderr.String())
			}
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("herald did not exit\n%s", stderr.String())
		}
		return stderr.String()
	}
	set := func(t *testing.T) {
		t.Helper()
		if err := raw.Do(t.Context(), raw.B().Set().Key(claim).Value("another-process").Px(time.Minute).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("at start", func(t *testing.T) {
		set(t)
		out := run(t, nil)
		if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "node_id=node-a") ||
			!strings.Contains(out, "another running process holds this node id") {
			t.Fatalf("no error naming the node id:\n%s", out)
		}
	})
	t.Run("while serving", func(t *testing.T) {
		if err := raw.Do(t.Context(), raw.B().Del().Key(claim).Build()).Error(); err != nil {
			t.Fatal(err)
		}
		out := run(t, func() {
			// Once the node holds the claim, another process takes it.
			deadline := time.Now().Add(10 * time.Second)
			for {
				v, err := raw.Do(t.Context(), raw.B().Get().Key(claim).Build()).ToString()
				if err == nil && v != "" {
					break
				}
				if time.Now().After(deadline) {
					t.Error("the node did not take its claim")
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			set(t)
		})
		if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "node_id=node-a") ||
			!strings.Contains(out, "another process took over this node id") {
			t.Fatalf("no error naming the node id:\n%s", out)
		}
	})
}
