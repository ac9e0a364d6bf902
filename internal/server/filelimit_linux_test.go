package server

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHelperLimitedServer is not a test of its own: TestOpenFileLimitReached
// runs the test binary again with it, as a server process that may open only
// a few more descriptors, and reads its address and room from stdout.
func TestHelperLimitedServer(t *testing.T) {
	if os.Getenv("HERALD_TEST_LIMITED_SERVER") == "" {
		t.Skip("runs as TestOpenFileLimitReached's server process")
	}
	testTransport = os.Getenv("HERALD_TEST_TRANSPORT")
	ts := startServer(t, oneApp(testApp("1")))
	open, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	const room = 12
	limit := uint64(len(open) + room)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("LIMITED %s %d\n", ts.addr, room)
	select {} // until the test kills the process
}

// TestOpenFileLimitReached: a node out of file descriptors keeps serving the
// connections it has, leaves new ones waiting rather than failing or
// crashing, and completes them once descriptors are free again.
func TestOpenFileLimitReached(t *testing.T) {
	for _, tr := range []string{"epoll", "goroutine"} {
		t.Run(tr, func(t *testing.T) { testOpenFileLimit(t, tr) })
	}
}

func testOpenFileLimit(t *testing.T, transport string) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperLimitedServer$")
	cmd.Env = append(os.Environ(), "HERALD_TEST_LIMITED_SERVER=1", "HERALD_TEST_TRANSPORT="+transport)
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
	var room int
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if _, err := fmt.Sscanf(lines.Text(), "LIMITED %s %d", &addr, &room); err == nil {
			break
		}
	}
	if addr == "" {
		t.Fatal("the server process did not start")
	}

	// Connect until the server stops answering: the last ones wait.
	var open, waiting []*pendingUpgrade
	for i := 0; i < room+4; i++ {
		u := startUpgrade(t, addr)
		if u.wait(t, 700*time.Millisecond) {
			open = append(open, u)
		} else {
			waiting = append(waiting, u)
		}
	}
	if len(open) < room/2 || len(waiting) == 0 {
		t.Fatalf("%d connections opened and %d waiting with room for %d; want the last ones to wait", len(open), len(waiting), room)
	}
	// The connections it has are served as before.
	for _, u := range open[len(open)-2:] {
		u.ping(t)
	}
	// Free some descriptors: the waiting connections get through. (A slow
	// machine may have counted a served connection as waiting; it holds its
	// descriptor already.)
	for _, u := range open[:min(len(waiting)+2, len(open)-2)] {
		u.conn.Close()
	}
	for i, u := range waiting {
		if !u.wait(t, 5*time.Second) {
			t.Fatalf("waiting connection %d not served after descriptors were freed", i)
		}
		u.ping(t)
	}
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("server process gone: %v", err)
	}
}

// pendingUpgrade is a WebSocket handshake whose answer may take a while.
type pendingUpgrade struct {
	conn net.Conn
	br   *bufio.Reader
	c    *wsClient
}

func startUpgrade(t *testing.T, addr string) *pendingUpgrade {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	head := "GET /app/key-1?protocol=7 HTTP/1.1\r\n" + strings.Join(handshakeLines(), "\r\n") + "\r\n\r\n"
	if _, err := conn.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	return &pendingUpgrade{conn: conn, br: bufio.NewReader(conn)}
}

// wait reports whether the upgrade and connection_established arrived
// within d.
func (u *pendingUpgrade) wait(t *testing.T, d time.Duration) bool {
	t.Helper()
	if u.c != nil {
		return true
	}
	u.conn.SetReadDeadline(time.Now().Add(d))
	if _, err := u.br.Peek(1); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return false
		}
		t.Fatalf("waiting for the upgrade: %v", err)
	}
	resp, err := http.ReadResponse(u.br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %v, %v", resp, err)
	}
	u.c = &wsClient{T: t, Conn: u.conn, BR: u.br}
	return true
}

func (u *pendingUpgrade) ping(t *testing.T) {
	t.Helper()
	u.c.T = t
	u.conn.SetReadDeadline(time.Time{})
	u.c.Expect("pusher:connection_established")
	u.c.SendRaw([]byte(`{"event":"pusher:ping"}`))
	u.c.Expect("pusher:pong")
}
