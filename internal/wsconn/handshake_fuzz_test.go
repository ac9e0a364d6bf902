package wsconn

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"path"
	"strings"
	"testing"
)

// FuzzParseUpgradeDifferential holds ParseUpgrade to its promise: a head it
// accepts is one net/http reads the same way (GET, path, query, one Host,
// the key, nothing after the head) and that a real http.Server with Upgrade
// upgrades too, with the same 101 bytes. Every head net/http reads is also
// served by that server, whose 101 answers must follow RFC 6455.
func FuzzParseUpgradeDifferential(f *testing.F) {
	for _, s := range handshakeSeeds() {
		f.Add([]byte(s))
	}
	o := startOracle(f)
	f.Fuzz(func(t *testing.T, head []byte) {
		req, ok := ParseUpgrade(head)
		hr, after, err := readRequest(head)
		if ok {
			if HeadEnd(head) != len(head) {
				t.Fatalf("accepted, but the head ends at %d of %d bytes", HeadEnd(head), len(head))
			}
			if err != nil {
				t.Fatalf("accepted, but net/http reads: %v", err)
			}
			if after != 0 {
				t.Fatalf("accepted, but net/http reads %d bytes less", after)
			}
			checkSameRequest(t, &req, hr)
		}
		if err != nil || hr.ContentLength != 0 || len(hr.TransferEncoding) > 0 {
			return // net/http refuses it, or waits for a body
		}
		resp, raw := o.exchange(t, head)
		if ok {
			if want := string(req.appendResponse(nil)); !strings.HasPrefix(raw, want) {
				t.Fatalf("accepted, but net/http and Upgrade answer %.200q, want %q", raw, want)
			}
		}
		switch resp.StatusCode {
		case http.StatusSwitchingProtocols:
			checkRFCUpgrade(t, hr, resp)
		case http.StatusUpgradeRequired:
			if v := resp.Header.Values("Sec-WebSocket-Version"); len(v) != 1 || v[0] != "13" {
				t.Fatalf("426 names versions %q, want 13", v)
			}
		}
	})
}

// readRequest reads head with http.ReadRequest, which refuses a second Host
// and moves the one there is to Request.Host. It also returns how many bytes
// of head follow the request.
func readRequest(head []byte) (*http.Request, int, error) {
	rd := bytes.NewReader(head)
	br := bufio.NewReader(rd)
	r, err := http.ReadRequest(br)
	if err != nil {
		return nil, 0, err
	}
	r.Body.Close()
	return r, br.Buffered() + rd.Len(), nil
}

// checkSameRequest compares what ParseUpgrade made of a head with what
// net/http made of it.
func checkSameRequest(t *testing.T, req *UpgradeRequest, r *http.Request) {
	t.Helper()
	if r.Method != http.MethodGet {
		t.Fatalf("accepted, but net/http reads method %q", r.Method)
	}
	if r.ProtoMajor != 1 || r.ProtoMinor != 1 {
		t.Fatalf("accepted, but net/http reads %s", r.Proto)
	}
	if r.URL.Path != req.Path || r.URL.RawPath != "" || r.URL.RawQuery != req.RawQuery || r.URL.Host != "" {
		t.Fatalf("accepted as path %q query %q, net/http reads %#v", req.Path, req.RawQuery, r.URL)
	}
	if path.Clean(req.Path) != req.Path {
		t.Fatalf("accepted path %q, which net/http's ServeMux redirects", req.Path)
	}
	if got := req.Query().Encode(); got != r.URL.Query().Encode() {
		t.Fatalf("query %q, net/http's %q", got, r.URL.Query().Encode())
	}
	if r.Host == "" {
		t.Fatal("accepted, but net/http reads no Host")
	}
	if k := r.Header["Sec-Websocket-Key"]; len(k) != 1 || k[0] != string(req.nonce[:]) {
		t.Fatalf("accepted key %q, net/http reads %q", req.nonce, k)
	}
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 || r.Header.Get("Expect") != "" {
		t.Fatalf("accepted, but net/http reads a body or an expectation: %v", r.Header)
	}
}

// checkRFCUpgrade checks, independently of the code under test, that a
// request answered 101 is a handshake RFC 6455 section 4.2.1 allows, and
// that the answer accepts its key.
func checkRFCUpgrade(t *testing.T, r *http.Request, resp *http.Response) {
	t.Helper()
	one := func(name string) string {
		v := r.Header.Values(name)
		if len(v) != 1 {
			t.Fatalf("upgraded with %d %s headers: %q", len(v), name, v)
		}
		return v[0]
	}
	if r.Method != http.MethodGet || !r.ProtoAtLeast(1, 1) {
		t.Fatalf("upgraded a %s %s request", r.Method, r.Proto)
	}
	if u := one("Upgrade"); !strings.EqualFold(u, "websocket") {
		t.Fatalf("upgraded with Upgrade: %q", u)
	}
	found := false
	for _, v := range r.Header.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			found = found || strings.EqualFold(strings.TrimSpace(tok), "upgrade")
		}
	}
	if !found {
		t.Fatalf("upgraded with Connection: %q", r.Header.Values("Connection"))
	}
	if v := one("Sec-WebSocket-Version"); v != "13" {
		t.Fatalf("upgraded with Sec-WebSocket-Version: %q", v)
	}
	key := one("Sec-WebSocket-Key")
	if b, err := base64.StdEncoding.DecodeString(key); err != nil || len(b) != 16 {
		t.Fatalf("upgraded with Sec-WebSocket-Key: %q", key)
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		t.Fatalf("Sec-WebSocket-Accept %q, want %q", got, want)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") || !strings.EqualFold(resp.Header.Get("Connection"), "upgrade") {
		t.Fatalf("101 without Upgrade and Connection: %v", resp.Header)
	}
}

// handshakeSeeds are upgrade heads as Pusher clients and browsers send them,
// and variants of them that HTTP parsers are known to disagree on.
func handshakeSeeds() []string {
	const key = "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw=="
	chrome := []string{
		"GET /app/app-key?protocol=7&client=js&version=8.4.0&flash=false HTTP/1.1",
		"Host: 127.0.0.1:6001",
		"Connection: Upgrade",
		"Pragma: no-cache",
		"Cache-Control: no-cache",
		"User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
		"Upgrade: websocket",
		"Origin: http://localhost:3000",
		"Sec-WebSocket-Version: 13",
		"Accept-Encoding: gzip, deflate, br, zstd",
		"Accept-Language: en-US,en;q=0.9",
		"Cookie: _ga=GA1.1.2075.1712; XSRF-TOKEN=eyJpdiI6Ik%3D%3D; laravel_session=eyJ2YWx1ZSI6",
		key,
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
	}
	firefox := []string{
		"GET /app/app-key?protocol=7&client=js&version=8.4.0&flash=false HTTP/1.1",
		"Host: ws.example.com",
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
		"Accept: */*",
		"Accept-Language: en-US,en;q=0.5",
		"Accept-Encoding: gzip, deflate, br, zstd",
		"Sec-WebSocket-Version: 13",
		"Origin: https://app.example.com",
		"Sec-WebSocket-Extensions: permessage-deflate",
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
		"Connection: keep-alive, Upgrade",
		"Sec-Fetch-Dest: empty",
		"Sec-Fetch-Mode: websocket",
		"Sec-Fetch-Site: same-site",
		"Pragma: no-cache",
		"Cache-Control: no-cache",
		"Upgrade: websocket",
	}
	safari := []string{
		"GET /app/app-key?protocol=7&client=js&version=8.4.0&flash=false HTTP/1.1",
		"Host: ws.example.com:443",
		"Upgrade: websocket",
		"Connection: Upgrade",
		"Origin: https://app.example.com",
		"Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==",
		"Sec-WebSocket-Version: 13",
		"Sec-WebSocket-Extensions: permessage-deflate",
		"User-Agent: Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
	}
	node := []string{ // pusher-js in Node, through the ws package
		"GET /app/app-key?protocol=7&client=node&version=8.4.0&flash=false HTTP/1.1",
		"Sec-WebSocket-Version: 13",
		key,
		"Connection: Upgrade",
		"Upgrade: websocket",
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
		"Host: 127.0.0.1:6001",
	}
	java := []string{ // pusher-java-client
		"GET /app/app-key?client=java-client&protocol=5&version=2.4.2 HTTP/1.1",
		"Connection: Upgrade",
		"Host: 10.0.2.2:6001",
		"Sec-WebSocket-Key: 7Ut4QZ7v3E8NfOvg3KWBLQ==",
		"Sec-WebSocket-Version: 13",
		"Upgrade: websocket",
	}
	lower := []string{ // Herald's own tests and benchmark
		"GET /app/key-1?protocol=7 HTTP/1.1",
		"host: h",
		"upgrade: WebSocket",
		"connection: keep-alive, Upgrade",
		"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==",
		"sec-websocket-version: 13",
	}
	head := func(lines []string) string { return strings.Join(lines, "\r\n") + "\r\n\r\n" }
	with := func(lines []string, extra ...string) []string {
		return append(append([]string{}, lines...), extra...)
	}
	// target replaces the request line's target.
	target := func(t string) []string {
		l := with(node)
		l[0] = "GET " + t + " HTTP/1.1"
		return l
	}
	line := func(first string) []string {
		l := with(node)
		l[0] = first
		return l
	}
	// swap replaces the line starting with prefix.
	swap := func(lines []string, prefix, to string) []string {
		l := with(lines)
		for i := range l {
			if strings.HasPrefix(l[i], prefix) {
				l[i] = to
			}
		}
		return l
	}
	seeds := []string{
		head(chrome), head(firefox), head(safari), head(node), head(java), head(lower),
		head(chrome) + "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", // a first frame behind the head
		// Duplicates.
		head(with(node, key)),
		head(with(node, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")),
		head(with(node, "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==")),
		head(with(node, "Sec-WebSocket-Version: 13")),
		head(with(node, "Sec-WebSocket-Version: 8")),
		head(with(node, "Upgrade: websocket")),
		head(with(node, "Upgrade: h2c")),
		head(with(node, "Connection: Upgrade")),
		head(with(swap(node, "Connection:", "Connection: keep-alive"), "Connection: Upgrade")),
		head(with(node, "Host: evil.example")),
		head(with(node, "Host: 127.0.0.1:6001")),
		// Folding, line ends, whitespace.
		head(swap(node, "Sec-WebSocket-Key:", "Sec-WebSocket-Key:\r\n x3JJHMbDL1EzLkh9GBhXDw==")),
		head(swap(node, "Host:", "Host: 127.0.0.1\r\n\t:6001")),
		head(with(node, "X-Folded: a", " b")),
		strings.Join(node, "\n") + "\n\n",
		strings.Join(node, "\r\n") + "\n\r\n",
		strings.Join(node, "\n") + "\r\n\r\n",
		"\r\n" + head(node),
		head(swap(node, "Sec-WebSocket-Key:", "Sec-WebSocket-Key : x3JJHMbDL1EzLkh9GBhXDw==")),
		head(swap(node, "Sec-WebSocket-Key:", "Sec-WebSocket-Key\t: x3JJHMbDL1EzLkh9GBhXDw==")),
		head(swap(node, "Sec-WebSocket-Key:", " Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==")),
		head(swap(node, "Sec-WebSocket-Key:", "Sec-WebSocket-Key:\tx3JJHMbDL1EzLkh9GBhXDw==\t")),
		head(swap(node, "Sec-WebSocket-Key:", "Sec-WebSocket-Key:x3JJHMbDL1EzLkh9GBhXDw==")),
		head(swap(node, "Sec-WebSocket-Version:", "Sec-WebSocket-Version:  13 ")),
		head(with(node, ": empty name")),
		head(with(node, "No-Colon")),
		head(with(node, "X-Nul: a\x00b")),
		head(with(node, "X-Cr: a\rb")),
		head(with(node, "X-Del: a\x7fb")),
		head(with(node, "X-Utf8: caf\xc3\xa9")),
		head(with(node, "X-Latin1: caf\xe9")),
		head(with(node, "X-\xc3\xa9: 1")),
		head(with(node, "Sec-WebSoc\xe2\x84\xaaet-Key: dGhlIHNhbXBsZSBub25jZQ==")),
		head(with(node, "X-Long: "+strings.Repeat("v", 9000))),
		// Request lines and targets.
		head(target("http://127.0.0.1:6001/app/app-key?protocol=7")),
		head(target("//127.0.0.1/app/app-key")),
		head(target("127.0.0.1:6001")),
		head(target("*")),
		head(target("/app/app%2Dkey?protocol=7")),
		head(target("/app/app-key?protocol=%37&client=%zz")),
		head(target("/app/app-key?protocol=7#frag")),
		head(target("/app/app-key?protocol=7;client=js")),
		head(target("/app/app-key?")),
		head(target("/app/app-key/")),
		head(target("/app//app-key")),
		head(target("/app/./app-key")),
		head(target("/app/../app/app-key")),
		head(target("/app/app-key?q=a b")),
		head(target("/app/app-key?q=\"<>{}|^`")),
		head(target("/app/app-key\x00")),
		head(target("/app/%41pp-key")),
		head(target("/app/app~key.x_y")),
		head(line("get /app/app-key HTTP/1.1")),
		head(line("GET  /app/app-key HTTP/1.1")),
		head(line("GET /app/app-key  HTTP/1.1")),
		head(line("GET /app/app-key HTTP/1.1 ")),
		head(line("GET\t/app/app-key HTTP/1.1")),
		head(line("GET /app/app-key HTTP/1.0")),
		head(line("GET /app/app-key HTTP/1.2")),
		head(line("GET /app/app-key HTTP/2.0")),
		head(line("GET /app/app-key http/1.1")),
		head(line("GET /app/app-key HTTP/01.1")),
		head(line("HEAD /app/app-key HTTP/1.1")),
		head(line("POST /app/app-key HTTP/1.1")),
		head(line("GET /app/app-key")),
		// Bodies and expectations.
		head(with(node, "Content-Length: 0")),
		head(with(node, "Content-Length: 5")) + "hello",
		head(with(node, "Transfer-Encoding: chunked")) + "0\r\n\r\n",
		head(with(node, "Transfer-Encoding: identity")),
		head(with(node, "Expect: 100-continue")),
		head(with(node, "Expect: something")),
		// Header values.
		head(swap(node, "Sec-WebSocket-Key:", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ!=")),
		head(swap(node, "Sec-WebSocket-Key:", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZTE=")),
		head(swap(node, "Sec-WebSocket-Key:", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ")),
		head(swap(node, "Sec-WebSocket-Key:", "Sec-WebSocket-Key: dGhlIHNhbXBs ZSBub25jZQ==")),
		head(swap(node, "Sec-WebSocket-Key:", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==")),
		head(swap(node, "Sec-WebSocket-Key:", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAA")),
		head(swap(node, "Sec-WebSocket-Key:", "Sec-WebSocket-Key:")),
		head(swap(node, "Sec-WebSocket-Key:", "X-Nothing: 1")),
		head(swap(node, "Sec-WebSocket-Version:", "Sec-WebSocket-Version: 8")),
		head(swap(node, "Sec-WebSocket-Version:", "Sec-WebSocket-Version: 013")),
		head(swap(node, "Sec-WebSocket-Version:", "Sec-WebSocket-Version: 13, 8")),
		head(swap(node, "Sec-WebSocket-Version:", "Sec-WebSocket-Version:")),
		head(swap(swap(node, "Sec-WebSocket-Version:", "Sec-WebSocket-Version: 8"), "Sec-WebSocket-Key:", "X-Nothing: 1")),
		head(swap(node, "Upgrade:", "Upgrade: WEBSOCKET")),
		head(swap(node, "Upgrade:", "Upgrade: websocket, h2c")),
		head(swap(node, "Upgrade:", "Upgrade: web socket")),
		head(swap(node, "Upgrade:", "Upgrade:")),
		head(swap(node, "Connection:", "Connection: keep alive, upgrade")),
		head(swap(node, "Connection:", "Connection: ,upgrade,")),
		head(swap(node, "Connection:", "Connection: upgrade2")),
		head(swap(node, "Connection:", "Connection: close, Upgrade")),
		head(swap(node, "Host:", "Host:")),
		head(swap(node, "Host:", "Host: [::1]:6001")),
		head(swap(node, "Host:", "Host: user@127.0.0.1")),
		head(swap(node, "Host:", "Host: a b")),
		head(swap(node, "Host:", "Host: a,b")),
		head(swap(node, "Host:", "Host: h%41")),
		head(swap(node, "Host:", "X-Host: h")),
	}
	return seeds
}
