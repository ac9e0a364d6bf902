package server

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// A request head over maxHTTPHeadBytes is refused with 431, so that what a
// pending connection can make the node hold in its head stays small (net/http
// alone would take a megabyte); one just under it is served.
func TestHTTPHeadLimit(t *testing.T) {
	ts := startServer(t, oneApp(testApp("1")))
	status := func(cookieBytes int) string {
		t.Helper()
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		head := "GET /healthz HTTP/1.1\r\nHost: x\r\nCookie: " + strings.Repeat("c", cookieBytes) + "\r\n\r\n"
		go nc.Write([]byte(head)) // the server may answer before it has read it all
		line, err := bufio.NewReader(nc).ReadString('\n')
		if err != nil {
			t.Fatalf("cookie of %d bytes: %v", cookieBytes, err)
		}
		return strings.TrimSpace(line)
	}
	if got := status(maxHTTPHeadBytes - 1024); got != "HTTP/1.1 200 OK" {
		t.Errorf("head under the limit: %q", got)
	}
	if got := status(maxHTTPHeadBytes + 8<<10); !strings.HasPrefix(got, "HTTP/1.1 431") {
		t.Errorf("head over the limit: %q, want 431", got)
	}
}
