package server

import (
	"testing"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/transport"
)

// echoHandler answers each message with itself.
type echoHandler struct{ c transport.Conn }

func (h echoHandler) HandleMessage(b []byte) { h.c.Send(append([]byte(nil), b...)) }
func (echoHandler) HandleClose(error)        {}

// A route added to the table is served like /app/: through the raw accept
// path and through net/http, on both transports, and only at its path.
func TestUpgradeRouteTable(t *testing.T) {
	for _, tr := range []string{"epoll", "goroutine"} {
		t.Run(tr, func(t *testing.T) {
			queries := make(chan transport.Query, 1)
			ts := startServerWith(t, config.Config{Apps: []apps.App{testApp("1")}, Transport: tr}, func(s *Server) {
				s.routes = append(s.routes, upgradeRoute{prefix: "/test/echo", exact: true, serve: func(c transport.Conn, path string, q transport.Query) {
					queries <- q
					c.Start(echoHandler{c})
				}})
			})
			c := dial(t, ts, "/test/echo?x=1")
			if err := wsutil.WriteClientText(c.Conn, []byte("hello")); err != nil {
				t.Fatal(err)
			}
			msg, op, err := wsutil.ReadServerData(c.Conn)
			if err != nil || op != ws.OpText || string(msg) != "hello" {
				t.Fatalf("echo: %q %v %v", msg, op, err)
			}
			if q := <-queries; q.Get("x") != "1" {
				t.Fatalf("query %v", q)
			}
			// The Pusher route still works beside it, and a path that no
			// route matches is not upgraded.
			connect(t, ts, "key-1")
			if _, _, _, err := ws.DefaultDialer.Dial(t.Context(), "ws://"+ts.addr+"/test/echo/more"); err == nil {
				t.Fatal("a path no route serves was upgraded")
			}
		})
	}
}
