package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/heraldhq/herald/internal/config"
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
	conn, br, _, err := ws.Dial(context.Background(), fmt.Sprintf("ws://%s/app/%s?protocol=7", base, config.DevAppKey))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// What arrived with the handshake is read first.
	var r io.Reader = conn
	if br != nil {
		r = br
	}
	rw := struct {
		io.Reader
		io.Writer
	}{r, conn}
	if msg, err := wsutil.ReadServerText(rw); err != nil || !strings.Contains(string(msg), "connection_established") {
		t.Fatalf("first message %q, %v", msg, err)
	}

	// The client's close, whenever it comes.
	closed := make(chan time.Time, 1)
	closeCode := make(chan ws.StatusCode, 1)
	go func() {
		for {
			frame, err := ws.ReadFrame(r)
			if err != nil {
				closed <- time.Now()
				closeCode <- 0
				return
			}
			if frame.Header.OpCode == ws.OpClose {
				closed <- time.Now()
				code, _ := ws.ParseCloseFrameData(frame.Payload)
				closeCode <- code
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
