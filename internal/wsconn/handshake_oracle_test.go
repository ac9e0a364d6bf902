package wsconn

import (
	"bufio"
	"bytes"
	"io"
	"log"
	"net"
	"net/http"
	"testing"
	"time"
)

// oracle is an http.Server that upgrades every request with Upgrade, on a
// listener of in-memory connections.
type oracle struct {
	conns chan net.Conn
	done  chan struct{}
}

func startOracle(tb testing.TB) *oracle {
	up, err := NewUpgrader(Config{Transport: TransportGoroutine})
	if err != nil {
		tb.Fatal(err)
	}
	o := &oracle{conns: make(chan net.Conn), done: make(chan struct{})}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(w, r)
			if err != nil {
				return
			}
			c.Close(CloseNormal, "")
			c.Start(discardHandler{})
		}),
		ErrorLog: log.New(io.Discard, "", 0),
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve((*oracleListener)(o))
	}()
	tb.Cleanup(func() {
		close(o.done)
		srv.Close()
		<-served
		up.Close()
	})
	return o
}

// exchange sends head to the oracle and returns its answer, parsed and as
// far as it was read.
func (o *oracle) exchange(t *testing.T, head []byte) (*http.Response, string) {
	t.Helper()
	return o.send(t, head, false)
}

// exchangeAll is exchange that reads on until the oracle closes the
// connection.
func (o *oracle) exchangeAll(t *testing.T, head string) (*http.Response, string) {
	t.Helper()
	return o.send(t, []byte(head), true)
}

func (o *oracle) send(t *testing.T, head []byte, all bool) (*http.Response, string) {
	t.Helper()
	client, server := net.Pipe()
	defer client.Close()
	o.conns <- server
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		client.Write(head) // fails once client is closed, if never read
	}()
	defer func() { <-wrote }()
	defer client.Close()
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	var raw bytes.Buffer
	resp, err := http.ReadResponse(bufio.NewReader(io.TeeReader(client, &raw)), nil)
	if err != nil {
		t.Fatalf("net/http and Upgrade answer %q: %v", raw.Bytes(), err)
	}
	if all {
		if _, err := io.Copy(io.Discard, io.TeeReader(client, &raw)); err != nil {
			t.Fatalf("reading on after %q: %v", raw.Bytes(), err)
		}
	}
	return resp, raw.String()
}

type oracleListener oracle

func (l *oracleListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *oracleListener) Close() error { return nil }

func (l *oracleListener) Addr() net.Addr { return &net.UnixAddr{Name: "oracle", Net: "pipe"} }

type discardHandler struct{}

func (discardHandler) HandleMessage([]byte) {}
func (discardHandler) HandleTooLarge(int)   {}
func (discardHandler) HandleClose(error)    {}
