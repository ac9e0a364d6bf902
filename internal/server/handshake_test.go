package server

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// handshakeCase is one request head sent to /app/{key} and the exact status
// line both upgrade paths must answer it with.
type handshakeCase struct {
	name  string
	lines []string // request line first; joined with eol
	eol   string   // "\r\n" if empty
	body  string
	// status is the exact status line, without its line end.
	status string
	// raw: the demux upgrades it itself, without net/http.
	raw bool
}

const (
	switching  = "HTTP/1.1 101 Switching Protocols"
	badRequest = "HTTP/1.1 400 Bad Request"
)

func handshakeCases(key string) []handshakeCase {
	target := "/app/" + key + "?protocol=7&client=js&version=8.4.0&flash=false"
	get := "GET " + target + " HTTP/1.1"
	const wsKey = "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw=="
	browser := []string{
		get,
		"Host: 127.0.0.1:6001",
		"Connection: Upgrade",
		"Pragma: no-cache",
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
		"Upgrade: websocket",
		"Origin: http://localhost:3000",
		"Sec-WebSocket-Version: 13",
		"Accept-Encoding: gzip, deflate, br, zstd",
		wsKey,
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
	}
	with := func(extra ...string) []string { return append(append([]string{}, browser...), extra...) }
	// swap replaces the line starting with prefix, or drops it if to is "".
	swap := func(lines []string, prefix, to string) []string {
		var out []string
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				if to == "" {
					continue
				}
				l = to
			}
			out = append(out, l)
		}
		return out
	}
	line := func(first string) []string { return swap(browser, "GET ", first) }
	return []handshakeCase{
		{name: "browser", lines: browser, status: switching, raw: true},
		{name: "lowercase names, token list", lines: []string{
			get, "host: h", "upgrade: WebSocket", "connection: keep-alive, Upgrade",
			"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version: 13",
		}, status: switching, raw: true},

		// RFC 6455 section 11.3: a key and a version appear once.
		{name: "same key twice", lines: with(wsKey), status: badRequest},
		{name: "two keys", lines: with("sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ=="), status: badRequest},
		{name: "two versions", lines: with("Sec-WebSocket-Version: 13"), status: badRequest},
		{name: "versions 13 and 8", lines: with("Sec-WebSocket-Version: 8"), status: badRequest},
		{name: "two upgrades", lines: with("Upgrade: websocket"), status: badRequest},
		{name: "two hosts", lines: with("Host: other.example"), status: badRequest},
		{name: "connection in two fields", lines: with("Connection: keep-alive"), status: switching},
		{name: "upgrade token in the second connection field",
			lines: append(swap(browser, "Connection:", "Connection: keep-alive"), "Connection: Upgrade"), status: switching},

		// Section 4.2.1 and 4.2.2.
		{name: "no key", lines: swap(browser, "Sec-WebSocket-Key:", ""), status: badRequest},
		{name: "key not base64", lines: swap(browser, "Sec-WebSocket-Key:", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ!="), status: badRequest},
		{name: "key of 17 bytes", lines: swap(browser, "Sec-WebSocket-Key:", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZTE="), status: badRequest},
		{name: "key of 18 bytes", lines: swap(browser, "Sec-WebSocket-Key:", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAA"), status: badRequest},
		{name: "short key", lines: swap(browser, "Sec-WebSocket-Key:", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ"), status: badRequest},
		{name: "empty key", lines: swap(browser, "Sec-WebSocket-Key:", "Sec-WebSocket-Key:"), status: badRequest},
		{name: "version 8", lines: swap(browser, "Sec-WebSocket-Version:", "Sec-WebSocket-Version: 8"), status: "HTTP/1.1 426 Upgrade Required"},
		{name: "version 8 without key", lines: swap(swap(browser, "Sec-WebSocket-Version:", "Sec-WebSocket-Version: 8"), "Sec-WebSocket-Key:", ""),
			status: "HTTP/1.1 426 Upgrade Required"},
		{name: "no version", lines: swap(browser, "Sec-WebSocket-Version:", ""), status: badRequest},
		{name: "no upgrade", lines: swap(browser, "Upgrade:", ""), status: badRequest},
		{name: "upgrade h2c", lines: swap(browser, "Upgrade:", "Upgrade: h2c"), status: badRequest},
		{name: "no connection", lines: swap(browser, "Connection:", ""), status: badRequest},
		{name: "connection close", lines: swap(browser, "Connection:", "Connection: close"), status: badRequest},
		{name: "no host", lines: swap(browser, "Host:", ""), status: "HTTP/1.1 400 Bad Request: missing required Host header"},
		{name: "empty host", lines: swap(browser, "Host:", "Host:"), status: badRequest},
		{name: "head", lines: line("HEAD " + target + " HTTP/1.1"), status: "HTTP/1.1 405 Method Not Allowed"},
		{name: "post", lines: line("POST " + target + " HTTP/1.1"), status: "HTTP/1.1 405 Method Not Allowed"},
		{name: "http/1.0", lines: line("GET " + target + " HTTP/1.0"), status: "HTTP/1.0 400 Bad Request"},

		// A body could only be mistaken for frames.
		{name: "body", lines: with("Content-Length: 5"), body: "hello", status: badRequest},
		{name: "chunked body", lines: with("Transfer-Encoding: chunked"), body: "5\r\nhello\r\n0\r\n\r\n", status: badRequest},
		{name: "empty body", lines: with("Content-Length: 0"), status: switching},
		{name: "unknown transfer coding", lines: with("Transfer-Encoding: identity"), status: "HTTP/1.1 501 Not Implemented"},
		{name: "expect without body", lines: with("Expect: 100-continue"), status: switching},
		{name: "unknown expectation", lines: with("Expect: x"), status: "HTTP/1.1 417 Expectation Failed"},

		// HTTP syntax net/http tolerates, or refuses, itself.
		{name: "folded key", lines: swap(browser, "Sec-WebSocket-Key:", "Sec-WebSocket-Key:\r\n x3JJHMbDL1EzLkh9GBhXDw=="), status: switching},
		{name: "folded header", lines: with("X-Folded: a", "\tb"), status: switching},
		{name: "bare LF", lines: browser, eol: "\n", status: switching},
		{name: "NUL in a value", lines: with("X-Nul: a\x00b"), status: badRequest},
		{name: "CR in a value", lines: with("X-Cr: a\rb"), status: badRequest},
		{name: "space before colon", lines: with("X-Space : 1"), status: "HTTP/1.1 400 Bad Request: invalid header name"},
		{name: "space before key colon", lines: swap(browser, "Sec-WebSocket-Key:", "Sec-WebSocket-Key : x3JJHMbDL1EzLkh9GBhXDw=="),
			status: "HTTP/1.1 400 Bad Request: invalid header name"},
		{name: "absolute target", lines: line("GET http://127.0.0.1:6001" + target + " HTTP/1.1"), status: switching},
		{name: "escaped path", lines: line("GET /app/" + strings.Replace(key, "-", "%2D", 1) + "?protocol=7 HTTP/1.1"), status: switching},
		{name: "head over a megabyte", lines: with("Cookie: " + strings.Repeat("k=v; ", 220<<10)), status: "HTTP/1.1 431 Request Header Fields Too Large"},
	}
}

// TestHandshakeConformance sends every handshakeCase over a raw TCP
// connection, on both transports, once as it is (served by the demux if it
// can) and once padded past the demux's head limit (served by net/http), and
// requires the same exact status line from both.
func TestHandshakeConformance(t *testing.T) {
	transports := []string{"goroutine"}
	if runtime.GOOS == "linux" {
		transports = append(transports, "epoll")
	}
	a := testApp("1")
	pad := "X-Pad: " + strings.Repeat("p", maxHeadBytes+1)
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			cfg := oneApp(a)
			cfg.Transport = tr
			var httpConns atomic.Int32
			ts := startServerWith(t, cfg, func(s *Server) {
				s.http.ConnState = func(_ net.Conn, st http.ConnState) {
					if st == http.StateNew {
						httpConns.Add(1)
					}
				}
			})
			for _, tc := range handshakeCases(a.Key) {
				for _, viaHTTP := range []bool{false, true} {
					lines := tc.lines
					if viaHTTP {
						lines = append([]string{lines[0], pad}, lines[1:]...)
					}
					eol := tc.eol
					if eol == "" {
						eol = "\r\n"
					}
					req := strings.Join(lines, eol) + eol + eol + tc.body
					before := httpConns.Load()
					status, hdr := exchangeHead(t, ts.addr, req)
					name := tc.name
					if viaHTTP {
						name += " (net/http)"
					}
					if status != tc.status {
						t.Errorf("%s: answered %q, want %q", name, status, tc.status)
						continue
					}
					checkHandshakeAnswer(t, name, req, status, hdr)
					sawHTTP := httpConns.Load() != before
					if want := viaHTTP || !tc.raw; sawHTTP != want {
						t.Errorf("%s: served by net/http: %v, want %v", name, sawHTTP, want)
					}
				}
			}
		})
	}
}

// checkHandshakeAnswer checks the headers RFC 6455 asks for with status.
func checkHandshakeAnswer(t *testing.T, name, req, status string, hdr textproto.MIMEHeader) {
	t.Helper()
	switch {
	case status == switching:
		key := "x3JJHMbDL1EzLkh9GBhXDw=="
		if strings.Contains(req, "dGhlIHNhbXBsZSBub25jZQ==") {
			key = "dGhlIHNhbXBsZSBub25jZQ=="
		}
		sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		if got, want := hdr.Get("Sec-WebSocket-Accept"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
			t.Errorf("%s: Sec-WebSocket-Accept %q, want %q", name, got, want)
		}
	case strings.HasPrefix(status, "HTTP/1.1 426 "):
		if v := hdr.Values("Sec-WebSocket-Version"); len(v) != 1 || v[0] != "13" {
			t.Errorf("%s: 426 with Sec-WebSocket-Version %q, want 13", name, v)
		}
	}
}

// exchangeHead writes req, while reading the answer's status line and
// header, and closes the connection.
func exchangeHead(t *testing.T, addr, req string) (string, textproto.MIMEHeader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		// A server that answers before reading everything may reset the
		// connection under this write; the answer is read meanwhile.
		io.WriteString(c, req)
	}()
	defer func() { <-wrote }()
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	tp := textproto.NewReader(bufio.NewReader(c))
	status, err := tp.ReadLine()
	if err != nil {
		t.Fatalf("reading the answer to %.80q: %v", req, err)
	}
	hdr, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("reading the answer to %.80q: %v", req, err)
	}
	return status, hdr
}
