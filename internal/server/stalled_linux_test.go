package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// stalledServerFiles is the open-file limit of TestStalledBodiesLeaveRoom's
// server process: fewer than the stalled connections, more than the bound
// on pending connections.
const stalledServerFiles = 6000

// TestHelperStalledServer is not a test of its own: TestStalledBodiesLeaveRoom
// runs the test binary again with it, as a server process with an
// open-file limit of stalledServerFiles, and reads its address from stdout.
func TestHelperStalledServer(t *testing.T) {
	if os.Getenv("HERALD_TEST_STALLED_SERVER") == "" {
		t.Skip("runs as TestStalledBodiesLeaveRoom's server process")
	}
	testTransport = os.Getenv("HERALD_TEST_TRANSPORT")
	ts := startServer(t, oneApp(testApp("1")))
	lim := syscall.Rlimit{Cur: stalledServerFiles, Max: stalledServerFiles}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("STALLED %s\n", ts.addr)
	select {} // until the test kills the process
}

// TestStalledBodiesLeaveRoom: 10 000 connections that each send an
// unsigned REST head and stall in the body, more than the server may open
// files, neither stop new WebSocket connections or REST requests nor
// disturb established ones: each is answered and closed at once, so the
// server holds few of them at any time.
func TestStalledBodiesLeaveRoom(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 10 000 connections")
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < 10_000+1000 {
		t.Skipf("needs an open-file limit above 11000 (have %d, %v)", lim.Cur, err)
	}
	for _, tr := range []string{"epoll", "goroutine"} {
		t.Run(tr, func(t *testing.T) { testStalledBodies(t, tr) })
	}
}

func testStalledBodies(t *testing.T, transport string) {
	const stalled = 10_000
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperStalledServer$")
	cmd.Env = append(os.Environ(), "HERALD_TEST_STALLED_SERVER=1", "HERALD_TEST_TRANSPORT="+transport)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var addr string
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if _, err := fmt.Sscanf(lines.Text(), "STALLED %s", &addr); err == nil {
			break
		}
	}
	if addr == "" {
		t.Fatal("the server process did not start")
	}
	ts := &testServer{addr: addr} // enough for the client helpers
	a := testApp("1")

	// Established before the flood.
	sub, _ := connect(t, ts, a.Key)
	sub.Subscribe("news", "", "")
	sub.Expect("pusher_internal:subscription_succeeded")
	rest := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 5 * time.Second}
	defer rest.CloseIdleConnections()
	trigger := func(client *http.Client, event string) error {
		body := fmt.Sprintf(`{"name":%q,"data":"d","channel":"news"}`, event)
		resp, err := client.Post("http://"+addr+signedTarget(a, "POST", "/apps/1/events", nil, body), "application/json", strings.NewReader(body))
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	if err := trigger(rest, "before"); err != nil {
		t.Fatal(err)
	}
	sub.Expect("before")

	// The flood: unsigned heads announcing a body that never comes, from
	// several source addresses so that the client's ports do not run short.
	// The client keeps every connection open until the end.
	stalledHead := "POST /apps/1/events HTTP/1.1\r\nHost: herald\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"name\":"
	conns := make([]net.Conn, stalled)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{Timeout: 3 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+w%8))}}
			for i := next.Add(1) - 1; i < stalled; i = next.Add(1) - 1 {
				c, err := d.Dial("tcp", addr)
				if err != nil {
					failed.Add(1)
					continue
				}
				c.SetWriteDeadline(time.Now().Add(3 * time.Second))
				io.WriteString(c, stalledHead)
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	t.Logf("%d stalled connections opened in %v (%d failed)", stalled-failed.Load(), time.Since(start), failed.Load())
	if n := failed.Load(); n > stalled/100 {
		t.Errorf("%d of %d connections could not even be opened", n, stalled)
	}

	// While the client still holds them all: new WebSocket connections,
	// new REST connections, and the established ones, all served.
	for i := 0; i < 3; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, br, _, err := ws.Dial(ctx, "ws://"+addr+"/app/"+a.Key+"?protocol=7")
		cancel()
		if err != nil {
			t.Fatalf("new WebSocket connection %d: %v", i, err)
		}
		if br == nil {
			br = bufio.NewReader(conn)
		}
		c := &wsClient{T: t, Conn: conn, BR: br}
		c.Expect("pusher:connection_established")
		c.Alive()
		conn.Close()
		fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
		if err := trigger(fresh, fmt.Sprintf("fresh%d", i)); err != nil {
			t.Fatalf("new REST connection %d: %v", i, err)
		}
		sub.Expect(fmt.Sprintf("fresh%d", i))
	}
	if err := trigger(rest, "after"); err != nil {
		t.Fatalf("established REST client: %v", err)
	}
	sub.Expect("after")
	sub.Alive()

	// The server holds next to none of the stalled connections.
	deadline := time.Now().Add(10 * time.Second)
	for {
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		if len(fds) < 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server still has %d files open", len(fds))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
