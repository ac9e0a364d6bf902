package hub

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/transport"
)

// immediateTransport counts how its messages were handed over.
type immediateTransport struct {
	sends, sendNows atomic.Int32
}

var _ transport.Immediate = (*immediateTransport)(nil)

func (t *immediateTransport) Start(transport.Handler) {}
func (t *immediateTransport) Send([]byte) error       { t.sends.Add(1); return nil }
func (t *immediateTransport) SendNow([]byte) error    { t.sendNows.Add(1); return nil }
func (t *immediateTransport) Close(int, string)       {}
func (t *immediateTransport) Abort(int, string)       {}
func (t *immediateTransport) LastRead() time.Time     { return time.Time{} }

// connSub delivers through its hub connection, as a front end's session does.
type connSub struct{ c *Conn }

func (s connSub) SocketID() string { return s.c.SocketID() }
func (s connSub) Deliver(p *Publication) {
	s.c.Deliver(p, p.Payload(EncodingPusher, testEncode))
}

// A publication to few subscribers goes through SendNow, one to more of
// them through Send, which leaves the writes to the transport's loops.
func TestDeliverSendsNowOnlyToFew(t *testing.T) {
	for _, n := range []int{1, fewSubscribers, fewSubscribers + 1, 50} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			h := newHub()
			var trs []*immediateTransport
			for range n {
				tr := &immediateTransport{}
				c, err := h.Admit("app", 0, tr)
				if err != nil {
					t.Fatal(err)
				}
				h.Subscribe("app", "ch", connSub{c})
				trs = append(trs, tr)
			}
			if err := h.Publish(context.Background(), broker.Message{AppID: "app", Channel: "ch", Event: "e", Data: "d"}, SourceREST); err != nil {
				t.Fatal(err)
			}
			wantNow := n <= fewSubscribers
			for i, tr := range trs {
				sends, nows := tr.sends.Load(), tr.sendNows.Load()
				if wantNow && (nows != 1 || sends != 0) || !wantNow && (nows != 0 || sends != 1) {
					t.Fatalf("subscriber %d of %d: %d Send, %d SendNow; want SendNow: %v", i, n, sends, nows, wantNow)
				}
			}
		})
	}
}
