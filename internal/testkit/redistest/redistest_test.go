package redistest

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// do sends one inline command and returns the first reply line.
func do(t *testing.T, addr, cmd string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(line)
}

func TestServerLifecycle(t *testing.T) {
	s := Start(t)
	if strings.HasSuffix(s.Addr(), ":6379") {
		t.Fatalf("Addr = %s: the shared instance's port", s.Addr())
	}
	if want := "redis://" + s.Addr() + "/0"; s.URL() != want {
		t.Fatalf("URL = %s, want %s", s.URL(), want)
	}
	if got := do(t, s.Addr(), "SET k v"); got != "+OK" {
		t.Fatalf("SET: %s", got)
	}

	// Restart: same port, nothing kept.
	s.Restart(t)
	if got := do(t, s.Addr(), "EXISTS k"); got != ":0" {
		t.Fatalf("EXISTS after Restart = %s, want :0", got)
	}

	// Stop: the port refuses connections until Start.
	s.Stop(t)
	if c, err := net.DialTimeout("tcp", s.Addr(), 200*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("dial succeeded while stopped")
	}
	s.Start(t)
	if got := do(t, s.Addr(), "PING"); got != "+PONG" {
		t.Fatalf("PING after Start: %s", got)
	}

	s.Kill()
	if ping(s.Addr()) == nil {
		t.Fatal("PING answered after Kill")
	}
	s.Start(t)
	if got := do(t, s.Addr(), "PING"); got != "+PONG" {
		t.Fatalf("PING after Kill and Start: %s", got)
	}
}

func TestTwoServers(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("two servers on %s", a.Addr())
	}
	do(t, a.Addr(), "SET k a")
	if got := do(t, b.Addr(), "EXISTS k"); got != ":0" {
		t.Fatalf("second server sees the first's key: %s", got)
	}
}
