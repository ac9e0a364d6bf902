package wsconn

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// This file is the WebSocket handshake, both ways. A listener that reads a
// request head itself parses it with ParseUpgrade and, if it is a plain
// valid upgrade, completes it with Upgrader.UpgradeRaw. Anything the parser
// does not accept is meant to go to net/http, whose answer (through
// Upgrade, which checks the request with httpUpgrade) then stays the
// reference: the parser only accepts requests that net/http and Upgrade
// would upgrade too, and both answer with the same 101 bytes.

// webSocketGUID is the RFC 6455 constant appended to the client's key.
const webSocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// nonceLen is the length of a Sec-WebSocket-Key: 16 bytes in base64.
const nonceLen = 24

// responseHead is the 101 response up to the accept value; Upgrade answers
// with the same bytes.
const responseHead = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "

// UpgradeRequest is a WebSocket upgrade request accepted by ParseUpgrade.
type UpgradeRequest struct {
	// Path is the request path as sent; ParseUpgrade only accepts clean
	// paths of unreserved characters, so it needs no unescaping.
	Path string
	// RawQuery is the query after '?', without it.
	RawQuery string
	nonce    [nonceLen]byte
}

// Query parses RawQuery the way net/http's Request.URL.Query does.
func (r *UpgradeRequest) Query() url.Values {
	v, _ := url.ParseQuery(r.RawQuery)
	return v
}

// HeadEnd returns the length of the request head at the start of b,
// including its terminating empty line, or -1 if b holds no complete head
// yet. Like net/http it accepts a bare LF as a line end.
func HeadEnd(b []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		if i < len(b) && b[i] == '\n' {
			return i + 1
		}
		if i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n' {
			return i + 2
		}
	}
}

// ParseUpgrade parses a request head (as delimited by HeadEnd) and reports
// whether it is a WebSocket upgrade that UpgradeRaw may complete: "GET
// <path>[?query] HTTP/1.1", CRLF line ends, well-formed header fields, one
// non-empty Host, "Upgrade: websocket", a Connection token list naming
// upgrade, "Sec-WebSocket-Version: 13" and a Sec-WebSocket-Key of 16 bytes in
// base64, and no request body. It is deliberately narrower than HTTP: a
// request it refuses may still be valid, and belongs to net/http, which
// serves it, or refuses it, as usual.
func ParseUpgrade(head []byte) (UpgradeRequest, bool) {
	var req UpgradeRequest
	line, rest, ok := cutLine(head)
	if !ok {
		return req, false
	}
	target, ok := bytes.CutPrefix(line, []byte("GET "))
	if !ok {
		return req, false
	}
	target, ok = bytes.CutSuffix(target, []byte(" HTTP/1.1"))
	if !ok {
		return req, false
	}
	path, query, _ := bytes.Cut(target, []byte("?"))
	if !cleanPath(path) || !plainQuery(query) {
		return req, false
	}
	var host, upgrade, connection, version, key int // times seen
	for {
		line, rest, ok = cutLine(rest)
		if !ok {
			return req, false
		}
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return req, false
		}
		name, value := line[:colon], bytes.Trim(line[colon+1:], " \t")
		if !fieldValue(value) {
			return req, false
		}
		switch {
		case asciiEqualFold(name, "Host"):
			host++
			if !hostValue(value) {
				return req, false
			}
		case asciiEqualFold(name, "Upgrade"):
			upgrade++
			if !asciiEqualFold(value, "websocket") {
				return req, false
			}
		case asciiEqualFold(name, "Connection"):
			connection++
			if !hasToken(value, "upgrade") {
				return req, false
			}
		case asciiEqualFold(name, "Sec-WebSocket-Version"):
			version++
			if string(value) != "13" {
				return req, false
			}
		case asciiEqualFold(name, "Sec-WebSocket-Key"):
			key++
			if !validKey(value) {
				return req, false
			}
			copy(req.nonce[:], value)
		case asciiEqualFold(name, "Content-Length"), asciiEqualFold(name, "Transfer-Encoding"),
			asciiEqualFold(name, "Expect"):
			// A body, or an expectation net/http would answer itself.
			return req, false
		}
	}
	if len(rest) != 0 || host != 1 || upgrade != 1 || connection != 1 || version != 1 || key != 1 {
		return req, false
	}
	req.Path = string(path)
	if len(query) > 0 {
		req.RawQuery = string(query)
	}
	return req, true
}

// validKey reports whether v is a Sec-WebSocket-Key: 16 bytes in base64
// (RFC 6455 section 4.1).
func validKey(v []byte) bool {
	var raw [18]byte
	if len(v) != nonceLen {
		return false
	}
	n, err := base64.StdEncoding.Decode(raw[:], v)
	return err == nil && n == 16
}

// cutLine splits off one CRLF-terminated line.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 1 || b[i-1] != '\r' {
		return nil, nil, false
	}
	return b[:i-1], b[i+1:], true
}

// cleanPath accepts "/seg/seg..." of unreserved characters, without empty,
// "." or ".." segments: a path net/http's ServeMux neither unescapes nor
// redirects.
func cleanPath(p []byte) bool {
	if len(p) < 2 || p[0] != '/' {
		return false
	}
	for seg := range bytes.SplitSeq(p[1:], []byte("/")) {
		if len(seg) == 0 || string(seg) == "." || string(seg) == ".." {
			return false
		}
		for _, c := range seg {
			if !isUnreserved(c) {
				return false
			}
		}
	}
	return true
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// plainQuery accepts printable ASCII without '#' and ';', which net/http
// treats specially.
func plainQuery(q []byte) bool {
	for _, c := range q {
		if c <= ' ' || c >= 0x7f || c == '#' || c == ';' {
			return false
		}
	}
	return true
}

// isToken reports whether b is an RFC 7230 token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isTokenChar(c) {
			return false
		}
	}
	return true
}

func isTokenChar(c byte) bool {
	if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// fieldValue accepts a header value net/http accepts: no control
// characters but tab.
func fieldValue(v []byte) bool {
	for _, c := range v {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// hostValue accepts a non-empty host[:port] of the usual characters.
func hostValue(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	for _, c := range v {
		if !isUnreserved(c) && c != ':' && c != '[' && c != ']' {
			return false
		}
	}
	return true
}

// hasToken reports whether the comma-separated token list v names token,
// case-insensitively. A list that is not made of tokens does not.
func hasToken(v []byte, token string) bool {
	found := false
	for t := range bytes.SplitSeq(v, []byte(",")) {
		t = bytes.Trim(t, " \t")
		if len(t) == 0 {
			continue // empty list elements are allowed
		}
		if !isToken(t) {
			return false
		}
		if asciiEqualFold(t, token) {
			found = true
		}
	}
	return found
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// A refusal is the HTTP answer to a request that is not a WebSocket
// handshake Herald completes.
type refusal struct {
	status int
	reason string
}

func (f *refusal) Error() string { return f.reason }

// The refusals of RFC 6455 section 4.2.1 and 4.2.2, in the order httpUpgrade
// checks for them.
var (
	refuseMethod     = &refusal{http.StatusMethodNotAllowed, "a WebSocket handshake is a GET request"}
	refuseProto      = &refusal{http.StatusBadRequest, "a WebSocket handshake needs HTTP/1.1"}
	refuseHost       = &refusal{http.StatusBadRequest, "missing Host header"}
	refuseBody       = &refusal{http.StatusBadRequest, "a WebSocket handshake has no body"}
	refuseUpgrade    = &refusal{http.StatusBadRequest, `the handshake needs one "Upgrade: websocket" header`}
	refuseConnection = &refusal{http.StatusBadRequest, `the handshake needs a Connection header naming "upgrade"`}
	refuseNoVersion  = &refusal{http.StatusBadRequest, "the handshake needs one Sec-WebSocket-Version header"}
	refuseVersion    = &refusal{http.StatusUpgradeRequired, "Herald speaks WebSocket version 13"}
	refuseKey        = &refusal{http.StatusBadRequest, "the handshake needs one Sec-WebSocket-Key of 16 bytes in base64"}
)

// httpUpgrade checks a request net/http has read against RFC 6455 section
// 4.2.1 and returns the refusal to answer it with if it is not an upgrade.
// It is the rule ParseUpgrade narrows: a GET of HTTP/1.1 or later, with a
// Host, no body, exactly one "Upgrade: websocket", a Connection header (or
// several) naming upgrade, exactly one "Sec-WebSocket-Version: 13" and
// exactly one Sec-WebSocket-Key of 16 bytes in base64.
//
// Another method is answered 405, another WebSocket version 426 with the one
// Herald speaks (section 4.2.2), anything else 400: HTTP/1.0 too, as 505
// would refuse HTTP/1 as a whole. The RFC forbids a second key or version
// outright (section 11.3); a second Upgrade is refused too, as ParseUpgrade
// refuses it, rather than guessing which one counts. The version is checked
// before the key, which a client of another version may build differently.
func httpUpgrade(r *http.Request) (UpgradeRequest, *refusal) {
	var req UpgradeRequest
	switch {
	case r.Method != http.MethodGet:
		return req, refuseMethod
	case !r.ProtoAtLeast(1, 1):
		return req, refuseProto
	case r.Host == "":
		return req, refuseHost
	case r.ContentLength != 0 || len(r.TransferEncoding) > 0:
		// After the handshake the client's bytes are frames: a body
		// could only be mistaken for them.
		return req, refuseBody
	}
	if v := r.Header["Upgrade"]; len(v) != 1 || !asciiEqualFold([]byte(v[0]), "websocket") {
		return req, refuseUpgrade
	}
	if !namesToken(r.Header["Connection"], "upgrade") {
		return req, refuseConnection
	}
	switch v := r.Header["Sec-Websocket-Version"]; {
	case len(v) != 1 || v[0] == "":
		return req, refuseNoVersion
	case v[0] != "13":
		return req, refuseVersion
	}
	key := r.Header["Sec-Websocket-Key"]
	if len(key) != 1 || !validKey([]byte(key[0])) {
		return req, refuseKey
	}
	copy(req.nonce[:], key[0])
	req.Path, req.RawQuery = r.URL.Path, r.URL.RawQuery
	return req, nil
}

// namesToken reports whether the comma-separated lists in fields, which
// HTTP lets a client split over several header lines, name token,
// case-insensitively. Unlike hasToken it passes over list elements that are
// not tokens: what ParseUpgrade leaves to net/http is served leniently, as
// it was before there was a ParseUpgrade.
func namesToken(fields []string, token string) bool {
	for _, f := range fields {
		for t := range strings.SplitSeq(f, ",") {
			if asciiEqualFold([]byte(strings.Trim(t, " \t")), token) {
				return true
			}
		}
	}
	return false
}

// write answers the request with f and closes the connection afterwards: a
// client that sent frames behind its refused head must not have them read
// as another request.
func (f *refusal) write(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Connection", "close")
	switch f.status {
	case http.StatusMethodNotAllowed:
		h.Set("Allow", http.MethodGet)
	case http.StatusUpgradeRequired:
		// RFC 6455 section 4.4 names the versions Herald speaks; RFC 9110
		// section 15.5.22 the protocol to upgrade to, which is listed in
		// Connection too (after "close", which net/http looks for first).
		h.Set("Sec-WebSocket-Version", "13")
		h.Set("Upgrade", "websocket")
		h.Add("Connection", "Upgrade")
	}
	http.Error(w, f.reason, f.status)
}

// appendResponse appends the 101 response that accepts r.
func (r *UpgradeRequest) appendResponse(b []byte) []byte {
	// The key and the GUID hashed from an array on the stack: sha1.New
	// would cost every handshake an allocation.
	var in [len(r.nonce) + len(webSocketGUID)]byte
	copy(in[copy(in[:], r.nonce[:]):], webSocketGUID)
	sum := sha1.Sum(in[:])
	b = append(b, responseHead...)
	b = base64.StdEncoding.AppendEncode(b, sum[:])
	return append(b, "\r\n\r\n"...)
}

// responseLen is the length of every 101 response appendResponse writes.
var responseLen = len(responseHead) + base64.StdEncoding.EncodedLen(sha1.Size) + 4

// UpgradeRaw completes the handshake of req, read from nc by the caller:
// early holds the bytes that followed the request head (a client may send
// its first frames without waiting for the response); UpgradeRaw copies
// them. On the epoll transport the 101 response leaves in one writev with
// the connection's first messages. The caller then calls Start on the
// connection.
func (u *Upgrader) UpgradeRaw(nc net.Conn, req *UpgradeRequest, early []byte) (Conn, error) {
	resp := req.appendResponse(make([]byte, 0, responseLen))
	nc.SetDeadline(time.Time{})
	if u.pollers != nil {
		return u.pollers.adopt(nc, early, resp)
	}
	// The goroutine transport writes the response right away: its writer
	// only starts with Start.
	nc.SetWriteDeadline(time.Now().Add(u.cfg.WriteTimeout))
	n, err := nc.Write(resp)
	u.written.Add(uint64(n))
	nc.SetWriteDeadline(time.Time{})
	if err != nil {
		nc.Close()
		return nil, err
	}
	var r io.Reader = nc
	if len(early) > 0 {
		r = io.MultiReader(bytes.NewReader(bytes.Clone(early)), nc)
	}
	return newGoConn(nc, bufio.NewReader(r), u.cfg, &u.written), nil
}

// ErrNoPoller is UpgradeFD's answer when the transport is not epoll.
var ErrNoPoller = errors.New("the goroutine transport serves net.Conns only")

// UpgradeFD is UpgradeRaw for a socket accepted outside the Go runtime: fd
// must be a non-blocking TCP socket, which the connection owns from then
// on. Only the epoll transport takes raw sockets (see RawSockets); without it
// UpgradeFD returns ErrNoPoller and fd stays the caller's.
func (u *Upgrader) UpgradeFD(fd int, req *UpgradeRequest, early []byte) (Conn, error) {
	if u.pollers == nil {
		return nil, ErrNoPoller
	}
	resp := req.appendResponse(make([]byte, 0, responseLen))
	return u.pollers.adoptFD(fd, early, resp), nil
}

// RawSockets reports whether UpgradeFD is available.
func (u *Upgrader) RawSockets() bool { return u.pollers != nil }
