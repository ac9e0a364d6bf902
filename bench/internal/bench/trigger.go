package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/heraldhq/herald/bench/internal/signature"
)

// triggerConn sends signed trigger requests (POST /apps/{id}/events or
// /batch_events) over one keep-alive HTTP/1.1 connection, one at a time.
// It writes each request itself, in one write from a buffer it keeps, signs
// it with a pre-keyed HMAC, and reads the answer with net/http's parser
// (http.ReadResponse). net/http's client would add two goroutines per
// connection and a URL, a header map and a query map per request: on a
// machine shared with the server, that cost comes out of the server's
// share and out of the figures. Not safe for concurrent use: each
// publisher has its own.
type triggerConn struct {
	addr    string      // host:port to dial
	host    string      // the Host header
	tlsConf *tls.Config // for https
	path    string      // what is signed: /apps/{id}/events or /apps/{id}/batch_events
	target  string      // what is sent: any reverse-proxy prefix, then path
	signer  *signature.Signer
	timeout time.Duration

	nc    net.Conn
	br    *bufio.Reader
	req   []byte // the request being sent, reused
	msg   []byte // room for a refusal's body
	dials int
}

// maxErrorBody bounds what of a refusal's body is kept for the report.
const maxErrorBody = 512

func newTriggerConn(base, appID, key, secret string, batch bool, timeout time.Duration) (*triggerConn, error) {
	u, err := parseRESTBase(base)
	if err != nil {
		return nil, err
	}
	t := &triggerConn{host: u.Host, addr: u.Host, signer: signature.NewSigner(key, secret), timeout: timeout}
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		t.addr = net.JoinHostPort(u.Hostname(), port)
	}
	if u.Scheme == "https" {
		t.tlsConf = &tls.Config{ServerName: u.Hostname()}
	}
	endpoint := "/events"
	if batch {
		endpoint = "/batch_events"
	}
	t.path = "/apps/" + appID + endpoint
	t.target = strings.TrimSuffix(u.EscapedPath(), "/") + "/apps/" + url.PathEscape(appID) + endpoint
	return t, nil
}

// ErrTriggerStatus is a trigger request the server answered with another
// status than 200.
type ErrTriggerStatus struct {
	Path   string
	Status int
	Body   string
}

func (e *ErrTriggerStatus) Error() string {
	msg := fmt.Sprintf("POST %s: %d %s", e.Path, e.Status, http.StatusText(e.Status))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// send sends one request with body, signed at now, and waits for the
// answer. Any failure closes the connection; the next request dials anew.
// A request is never sent twice: a retry could deliver its events twice.
func (t *triggerConn) send(ctx context.Context, body []byte, now time.Time) error {
	if t.nc == nil {
		if err := t.dial(ctx); err != nil {
			return fmt.Errorf("POST %s: %w", t.path, err)
		}
	}
	r := append(t.req[:0], "POST "...)
	r = append(r, t.target...)
	r = append(r, '?')
	r = t.signer.AppendQuery(r, http.MethodPost, t.path, body, now.Unix())
	r = append(r, " HTTP/1.1\r\nHost: "...)
	r = append(r, t.host...)
	r = append(r, "\r\nUser-Agent: herald-bench\r\nContent-Type: application/json\r\nContent-Length: "...)
	r = strconv.AppendInt(r, int64(len(body)), 10)
	r = append(r, "\r\n\r\n"...)
	r = append(r, body...)
	t.req = r

	t.nc.SetDeadline(now.Add(t.timeout))
	if _, err := t.nc.Write(r); err != nil {
		t.close()
		return fmt.Errorf("POST %s: %w", t.path, err)
	}
	resp, err := http.ReadResponse(t.br, nil)
	if err != nil {
		t.close()
		return fmt.Errorf("POST %s: reading the answer: %w", t.path, err)
	}
	if t.msg == nil {
		t.msg = make([]byte, maxErrorBody)
	}
	n, _ := io.ReadFull(resp.Body, t.msg)
	head := t.msg[:n]
	// Read to the end, or the connection cannot carry the next request.
	_, bodyErr := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if bodyErr != nil || resp.Close {
		t.close()
	}
	if resp.StatusCode != http.StatusOK || isErrorBody(head) {
		return &ErrTriggerStatus{Path: t.path, Status: resp.StatusCode, Body: strings.TrimSpace(string(head))}
	}
	if bodyErr != nil {
		return fmt.Errorf("POST %s: reading the answer: %w", t.path, bodyErr)
	}
	return nil
}

func (t *triggerConn) dial(ctx context.Context) error {
	d := net.Dialer{Timeout: t.timeout}
	nc, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return err
	}
	if t.tlsConf != nil {
		tc := tls.Client(nc, t.tlsConf)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return err
		}
		nc = tc
	}
	t.nc, t.br = nc, bufio.NewReaderSize(nc, 4096)
	t.dials++
	return nil
}

func (t *triggerConn) close() {
	if t.nc != nil {
		t.nc.Close()
		t.nc, t.br = nil, nil
	}
}

// isNotFound reports whether err is a 404 or 405 from the server: the
// endpoint does not exist there.
func isNotFound(err error) bool {
	var se *ErrTriggerStatus
	return errors.As(err, &se) && (se.Status == http.StatusNotFound || se.Status == http.StatusMethodNotAllowed)
}

// isErrorBody reports whether a 200 answer is a refusal all the same: some
// servers (soketi 1.6.1 among them) write the status line before their
// authentication check fails, and then answer 200 with {"error": ...}.
func isErrorBody(b []byte) bool {
	if !bytes.Contains(b, []byte(`"error"`)) {
		return false // the usual {} costs no decode
	}
	var v struct {
		Error json.RawMessage `json:"error"`
	}
	return json.Unmarshal(b, &v) == nil && v.Error != nil
}
