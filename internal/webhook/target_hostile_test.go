package webhook_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/webhook"
)

// TestSwitchingProtocolsTargetDoesNotHoldTheSender: a target that answers
// a webhook with 101 Switching Protocols and then says nothing gets its
// attempt ended at the request timeout, like any other. net/http hands
// such a response's connection to the caller, out of the reach of the
// request's context, so reading its body waited for the target: the
// target's sender, and Close with it, were held for as long as the target
// liked.
func TestSwitchingProtocolsTargetDoesNotHoldTheSender(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	held := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held <- c
			go func() {
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: anything\r\n\r\n"))
				// and then nothing, for as long as the test runs
			}()
		}
	}()
	defer func() {
		for {
			select {
			case c := <-held:
				c.Close()
			default:
				return
			}
		}
	}()

	n := newNode(t, func(c *webhook.Config) {
		c.Client = nil // the dispatcher's own, over real connections
		c.Clock = nil
		c.BatchWindow = time.Millisecond
		c.RequestTimeout = 200 * time.Millisecond
		c.RetryLimit = time.Millisecond // one attempt
	}, apps.Webhook{URL: "http://" + ln.Addr().String() + "/hook", EventTypes: []string{"channel_occupied"}})
	n.hub.Subscribe("1", "ch", &sub{"1.1"})
	eventually(t, func() bool { return n.rec.get("request/http_error") == 1 })

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- n.d.Close(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("Close still waiting %v after its deadline: the sender is held by the target", time.Since(start))
	}
}

// TestHugeAnswerHeadIsNotRead: a target's answer head is read up to a
// bound of Herald's, not net/http's default of 10 MiB, which each
// attempt of each target could otherwise make the node hold.
func TestHugeAnswerHeadIsNotRead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				w := bufio.NewWriter(c)
				w.WriteString("HTTP/1.1 200 OK\r\n")
				for i := 0; i < 1024; i++ { // 1 MiB of header lines
					w.WriteString("X-Pad: ")
					for j := 0; j < 1014; j++ {
						w.WriteByte('p')
					}
					w.WriteString("\r\n")
				}
				w.WriteString("Content-Length: 0\r\n\r\n")
				w.Flush()
			}()
		}
	}()
	n := newNode(t, func(c *webhook.Config) {
		c.Client = nil
		c.Clock = nil
		c.BatchWindow = time.Millisecond
		c.RetryLimit = time.Millisecond // one attempt
	}, apps.Webhook{URL: "http://" + ln.Addr().String() + "/hook", EventTypes: []string{"channel_occupied"}})
	n.hub.Subscribe("1", "ch", &sub{"1.1"})
	eventually(t, func() bool { return n.rec.get("request/error")+n.rec.get("request/success") == 1 })
	if n.rec.get("request/success") != 0 {
		t.Fatal("an answer with a 1 MiB head was read whole")
	}
}
