package wsconn

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

const testKey = "dGhlIHNhbXBsZSBub25jZQ==" // RFC 6455's example

func upgradeHead(lines ...string) string {
	return strings.Join(lines, "\r\n") + "\r\n\r\n"
}

func validHead(extra ...string) []string {
	return append([]string{
		"GET /app/key-1?protocol=7&client=js&version=8.4.0 HTTP/1.1",
		"Host: 127.0.0.1:7201",
		"Upgrade: websocket",
		"Connection: Upgrade",
		"Sec-WebSocket-Key: " + testKey,
		"Sec-WebSocket-Version: 13",
	}, extra...)
}

// replace returns lines with the one starting with prefix replaced (or
// dropped if with is empty).
func replace(lines []string, prefix, with string) []string {
	out := []string{}
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			if with != "" {
				out = append(out, with)
			}
			continue
		}
		out = append(out, l)
	}
	return out
}

func TestParseUpgradeAccepts(t *testing.T) {
	for name, head := range map[string]string{
		"plain": upgradeHead(validHead()...),
		"browser": upgradeHead(validHead(
			"User-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0",
			"Origin: https://example.com",
			"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
			"Cookie: a=b; c=d",
			"Pragma: no-cache",
		)...),
		"token list":        upgradeHead(replace(validHead(), "Connection:", "Connection: keep-alive, Upgrade")...),
		"token list spaces": upgradeHead(replace(validHead(), "Connection:", "Connection:keep-alive ,\tupgrade ,")...),
		"lowercase": upgradeHead(
			"GET /app/key-1?protocol=7 HTTP/1.1",
			"host: h",
			"upgrade: WebSocket",
			"connection: upgrade",
			"sec-websocket-key: "+testKey,
			"sec-websocket-version: 13",
		),
	} {
		req, ok := ParseUpgrade([]byte(head))
		if !ok {
			t.Errorf("%s: refused:\n%s", name, head)
			continue
		}
		if req.Path != "/app/key-1" || req.Query().Get("protocol") != "7" {
			t.Errorf("%s: path %q, query %q", name, req.Path, req.RawQuery)
		}
	}
}

func TestParseUpgradeRefuses(t *testing.T) {
	v := validHead()
	for name, head := range map[string]string{
		"no key":             upgradeHead(replace(v, "Sec-WebSocket-Key:", "")...),
		"short key":          upgradeHead(replace(v, "Sec-WebSocket-Key:", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ")...),
		"key not base64":     upgradeHead(replace(v, "Sec-WebSocket-Key:", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ!=")...),
		"key of 17 bytes":    upgradeHead(replace(v, "Sec-WebSocket-Key:", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZTE=")...),
		"two keys":           upgradeHead(append(v, "Sec-WebSocket-Key: "+testKey)...),
		"another key":        upgradeHead(append(v, "sec-websocket-key: x3JJHMbDL1EzLkh9GBhXDw==")...),
		"two versions":       upgradeHead(append(v, "Sec-WebSocket-Version: 13")...),
		"two upgrades":       upgradeHead(append(v, "Upgrade: websocket")...),
		"two connections":    upgradeHead(append(v, "Connection: keep-alive")...),
		"folded key":         upgradeHead(replace(v, "Sec-WebSocket-Key:", "Sec-WebSocket-Key:\r\n "+testKey)...),
		"version 8":          upgradeHead(replace(v, "Sec-WebSocket-Version:", "Sec-WebSocket-Version: 8")...),
		"no version":         upgradeHead(replace(v, "Sec-WebSocket-Version:", "")...),
		"no upgrade":         upgradeHead(replace(v, "Upgrade:", "")...),
		"upgrade h2c":        upgradeHead(replace(v, "Upgrade:", "Upgrade: h2c")...),
		"connection close":   upgradeHead(replace(v, "Connection:", "Connection: close")...),
		"connection prefix":  upgradeHead(replace(v, "Connection:", "Connection: upgrades")...),
		"connection junk":    upgradeHead(replace(v, "Connection:", "Connection: keep alive, upgrade")...),
		"no host":            upgradeHead(replace(v, "Host:", "")...),
		"empty host":         upgradeHead(replace(v, "Host:", "Host:")...),
		"two hosts":          upgradeHead(append(v, "Host: other")...),
		"post":               upgradeHead(append([]string{"POST /app/key-1 HTTP/1.1"}, v[1:]...)...),
		"http/1.0":           upgradeHead(append([]string{"GET /app/key-1 HTTP/1.0"}, v[1:]...)...),
		"absolute target":    upgradeHead(append([]string{"GET http://h/app/key-1 HTTP/1.1"}, v[1:]...)...),
		"escaped path":       upgradeHead(append([]string{"GET /app/key%2D1 HTTP/1.1"}, v[1:]...)...),
		"dot segment":        upgradeHead(append([]string{"GET /app/../apps/1 HTTP/1.1"}, v[1:]...)...),
		"empty segment":      upgradeHead(append([]string{"GET /app//key HTTP/1.1"}, v[1:]...)...),
		"semicolon query":    upgradeHead(append([]string{"GET /app/key-1?protocol=7;x=1 HTTP/1.1"}, v[1:]...)...),
		"body":               upgradeHead(append(v, "Content-Length: 5")...),
		"chunked":            upgradeHead(append(v, "Transfer-Encoding: chunked")...),
		"expect":             upgradeHead(append(v, "Expect: 100-continue")...),
		"space before colon": upgradeHead(append(v, "X-Thing : 1")...),
		"folded line":        upgradeHead(append(v, "X-Thing: 1", " continued")...),
		"control in value":   upgradeHead(append(v, "X-Thing: a\x01b")...),
		"bare LF":            strings.Join(validHead(), "\n") + "\n\n",
		"trailing bytes":     upgradeHead(v...) + "x",
	} {
		if _, ok := ParseUpgrade([]byte(head)); ok {
			t.Errorf("%s: accepted:\n%q", name, head)
		}
	}
}

// TestUpgradeRefusals: Upgrade answers what is not an RFC 6455 handshake
// with the status and headers the RFC asks for, and closes the connection,
// so that frames behind a refused head are not read as another request.
func TestUpgradeRefusals(t *testing.T) {
	o := startOracle(t)
	v := validHead()
	for _, tc := range []struct {
		name   string
		head   string
		status int
		header map[string][]string
	}{
		{"two keys", upgradeHead(append(v, "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==")...), 400, nil},
		{"same key twice", upgradeHead(append(v, "Sec-WebSocket-Key: "+testKey)...), 400, nil},
		{"two versions", upgradeHead(append(v, "Sec-WebSocket-Version: 13")...), 400, nil},
		{"two upgrades", upgradeHead(append(v, "Upgrade: websocket")...), 400, nil},
		{"key not base64", upgradeHead(replace(v, "Sec-WebSocket-Key:", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ!=")...), 400, nil},
		{"no key", upgradeHead(replace(v, "Sec-WebSocket-Key:", "")...), 400, nil},
		{"no version", upgradeHead(replace(v, "Sec-WebSocket-Version:", "")...), 400, nil},
		{"version 8", upgradeHead(replace(v, "Sec-WebSocket-Version:", "Sec-WebSocket-Version: 8")...), 426, map[string][]string{
			// ReadResponse drops a Connection header naming close.
			"Sec-Websocket-Version": {"13"}, "Upgrade": {"websocket"}, "Connection": nil,
		}},
		{"no upgrade", upgradeHead(replace(v, "Upgrade:", "")...), 400, nil},
		{"no connection", upgradeHead(replace(v, "Connection:", "")...), 400, nil},
		{"head", upgradeHead(append([]string{"HEAD /app/key-1 HTTP/1.1"}, v[1:]...)...), 405, map[string][]string{"Allow": {"GET"}}},
		{"put", upgradeHead(append([]string{"PUT /app/key-1 HTTP/1.1"}, v[1:]...)...), 405, map[string][]string{"Allow": {"GET"}}},
		{"http/1.0", upgradeHead(append([]string{"GET /app/key-1 HTTP/1.0"}, v[1:]...)...), 400, nil},
		{"empty host", upgradeHead(replace(v, "Host:", "Host:")...), 400, nil},
		{"body", upgradeHead(append(v, "Content-Length: 5")...) + "hello", 400, nil},
		{"chunked", upgradeHead(append(v, "Transfer-Encoding: chunked")...) + "0\r\n\r\n", 400, nil},
	} {
		// A second request behind the first must go unanswered.
		resp, raw := o.exchangeAll(t, tc.head+"GET /again HTTP/1.1\r\nHost: h\r\n\r\n")
		if resp.StatusCode != tc.status {
			t.Errorf("%s: answered %s, want %d", tc.name, resp.Status, tc.status)
			continue
		}
		if !resp.Close {
			t.Errorf("%s: the answer does not say Connection: close", tc.name)
		}
		for k, v := range tc.header {
			if got := resp.Header[k]; strings.Join(got, "|") != strings.Join(v, "|") {
				t.Errorf("%s: %s %q, want %q", tc.name, k, got, v)
			}
		}
		if tc.status == http.StatusUpgradeRequired && !strings.Contains(raw, "\r\nConnection: close\r\nConnection: Upgrade\r\n") {
			t.Errorf("%s: Upgrade not named in Connection:\n%s", tc.name, raw)
		}
		if n := strings.Count("\n"+raw, "\nHTTP/1."); n != 1 {
			t.Errorf("%s: %d answers, want one and the connection closed:\n%s", tc.name, n, raw)
		}
	}
}

func TestHeadEnd(t *testing.T) {
	for in, want := range map[string]int{
		"":                           -1,
		"GET / HTTP/1.1\r\n":         -1,
		"GET / HTTP/1.1\r\nA: b\r\n": -1,
		"GET / HTTP/1.1\r\n\r\n":     18,
		"GET / HTTP/1.1\r\n\r\nxyz":  18,
		"GET / HTTP/1.1\n\nxyz":      16,
		"GET / HTTP/1.1\nA: b\r\n\r": -1,
	} {
		if got := HeadEnd([]byte(in)); got != want {
			t.Errorf("HeadEnd(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestUpgradeResponse(t *testing.T) {
	req, ok := ParseUpgrade([]byte(upgradeHead(validHead()...)))
	if !ok {
		t.Fatal("refused")
	}
	got := string(req.appendResponse(nil))
	want := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
	if got != want || len(got) != responseLen {
		t.Fatalf("response %q, want %q", got, want)
	}
}

type chanHandler struct {
	msgs   chan string
	closed chan error
}

func (h chanHandler) HandleMessage(d []byte) { h.msgs <- string(d) }
func (h chanHandler) HandleTooLarge(int)     {}
func (h chanHandler) HandleClose(err error)  { h.closed <- err }

func newChanHandler() chanHandler {
	return chanHandler{msgs: make(chan string, 4), closed: make(chan error, 1)}
}

// expectMessage waits for the handler's next message, which must be want.
func (h chanHandler) expectMessage(t *testing.T, want string) {
	t.Helper()
	select {
	case m := <-h.msgs:
		if m != want {
			t.Fatalf("message %q, want %q", m, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("message %q not delivered", want)
	}
}

// expectClosed waits for HandleClose.
func (h chanHandler) expectClosed(t *testing.T) {
	t.Helper()
	select {
	case <-h.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("no HandleClose")
	}
}

// tcpPair returns both ends of a loopback TCP connection; the test closes
// them when it ends.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

// TestUpgradeRawPipelinedFrame: a client that sends its first frame right
// behind the request head has it served, and gets the 101 response before
// the first server frame.
func TestUpgradeRawPipelinedFrame(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr, func(t *testing.T) {
			up, err := NewUpgrader(Config{Transport: tr, Pollers: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer up.Close()
			client, server := tcpPair(t)
			head := upgradeHead(validHead()...)
			frame := clientFrame(true, opText, []byte("hello"))
			if _, err := client.Write(append([]byte(head), frame...)); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4096)
			n := 0
			for HeadEnd(buf[:n]) < 0 {
				m, err := server.Read(buf[n:])
				if err != nil {
					t.Fatal(err)
				}
				n += m
			}
			end := HeadEnd(buf[:n])
			req, ok := ParseUpgrade(buf[:end])
			if !ok {
				t.Fatal("refused")
			}
			c, err := up.UpgradeRaw(server, &req, buf[end:n])
			if err != nil {
				t.Fatal(err)
			}
			clear(buf) // UpgradeRaw must have copied what it keeps
			h := newChanHandler()
			c.Send([]byte("welcome"))
			c.Start(h)

			client.SetReadDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(client)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
				t.Fatalf("response %d %v", resp.StatusCode, resp.Header)
			}
			hdr := make([]byte, 2)
			if _, err := io.ReadFull(br, hdr); err != nil {
				t.Fatal(err)
			}
			p := make([]byte, hdr[1])
			if _, err := io.ReadFull(br, p); err != nil || string(p) != "welcome" {
				t.Fatalf("first frame %q, %v", p, err)
			}
			h.expectMessage(t, "hello")
			c.Close(CloseNormal, "")
			client.Close()
			h.expectClosed(t)
		})
	}
}

// TestAbortKeepsHandshakeResponse: a connection aborted before its first
// flush still answers the handshake, then closes.
func TestAbortKeepsHandshakeResponse(t *testing.T) {
	up, err := NewUpgrader(Config{Transport: TransportEpoll, Pollers: 1})
	if err != nil {
		if defaultTransport != TransportEpoll {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	defer up.Close()
	client, server := tcpPair(t)
	req, _ := ParseUpgrade([]byte(upgradeHead(validHead()...)))
	c, err := up.UpgradeRaw(server, &req, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Send([]byte("dropped"))
	c.Abort(4100, "slow")
	h := newChanHandler()
	c.Start(h)
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(client)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("response %v, %v", resp, err)
	}
	// The loop may have begun writing before Abort came; then the text
	// frame goes out whole, and the close follows it.
	hdr := make([]byte, 2)
	for frames := 0; ; frames++ {
		if _, err := io.ReadFull(br, hdr); err != nil {
			t.Fatal(err)
		}
		if hdr[0]&0x0f == opClose {
			break
		}
		if frames > 0 || hdr[0]&0x0f != opText {
			t.Fatalf("frame opcode %d after the 101, want close (or one text frame sent before the abort)", hdr[0]&0x0f)
		}
		if _, err := io.CopyN(io.Discard, br, int64(hdr[1]&0x7f)); err != nil {
			t.Fatal(err)
		}
	}
	client.Close()
	h.expectClosed(t)
}

// Reading an upgrade head and writing its 101 cost two allocations, the
// path's and the query's strings: no split lists, no hash state.
func TestHandshakeAllocs(t *testing.T) {
	head := []byte(upgradeHead(replace(validHead(), "Connection:", "Connection: keep-alive, Upgrade")...))
	buf := make([]byte, 0, responseLen)
	n := testing.AllocsPerRun(100, func() {
		req, ok := ParseUpgrade(head)
		if !ok {
			t.Fatal("refused")
		}
		req.appendResponse(buf[:0])
	})
	if n > 2 {
		t.Errorf("%v allocations, want at most 2", n)
	}
}
