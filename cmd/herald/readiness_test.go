package main

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/testkit/pusherclient"
)

// On SIGTERM a real node turns /readyz to 503 first and keeps serving its
// clients for the shutdown delay, so that a load balancer stops sending it
// new ones before any is closed; then it asks clients to reconnect (4200)
// and exits 0.
func TestReadinessTurnsBeforeClientsClose(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	exe := buildHerald(t)
	srv, line := startHerald(t, exe, "--addr", "127.0.0.1:0", "--log-level", "error", "--shutdown-delay", "1s")
	_, base, _ := strings.Cut(strings.TrimSpace(line), " listening on ")
	status := func(path string) int {
		resp, err := http.Get("http://" + base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status("/readyz"); got != 200 {
		t.Fatalf("/readyz before SIGTERM: %d", got)
	}
	c, _ := pusherclient.Connect(t, base, config.DevAppKey)

	// The client's close, whenever it comes.
	closed := make(chan time.Time, 1)
	closeCode := make(chan int, 1)
	go func() {
		for {
			m, err := c.Next(time.Minute)
			if err != nil || m.Close != 0 {
				closed <- time.Now()
				closeCode <- m.Close
				return
			}
		}
	}()

	srv.Process.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(900 * time.Millisecond)
	for status("/readyz") != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("/readyz did not turn 503 within 900ms of SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
	notReady := time.Now()
	// Still serving during the delay: liveness and the existing client.
	if got := status("/livez"); got != 200 {
		t.Fatalf("/livez while draining: %d", got)
	}
	select {
	case at := <-closed:
		t.Fatalf("the client was closed %v after /readyz turned, within the shutdown delay", at.Sub(notReady))
	case <-time.After(300 * time.Millisecond):
	}
	select {
	case at := <-closed:
		if code := <-closeCode; code != 4200 {
			t.Fatalf("closed with %d, want 4200", code)
		}
		if !at.After(notReady) {
			t.Fatal("closed before /readyz turned")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the client was not closed after the shutdown delay")
	}
	if err := srv.Wait(); err != nil {
		t.Fatalf("herald after SIGTERM: %v", err)
	}
}
