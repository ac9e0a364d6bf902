// Package transport is the contract between a connection's protocol logic
// (a front end's session) and whatever carries its messages: a WebSocket
// (package wsconn) today, an HTTP streaming response tomorrow. A front end
// builds message payloads; the transport frames and writes them.
//
// The rule every implementation and every Handler keeps: Handler methods run
// on the transport's loop, which may serve thousands of connections, so
// they must never block — no network round trip, no broker call, no lock
// held by something that blocks. Work that may block is handed off (see
// hub.Ops) and its result comes back as an event.
package transport

import (
	"errors"
	"time"
)

// Errors returned by Conn.Send.
var (
	// ErrQueueFull means the connection's send queue would exceed its byte
	// limit: the client is not reading fast enough.
	ErrQueueFull = errors.New("transport: send queue full")
	// ErrClosed means the connection is closing or closed.
	ErrClosed = errors.New("transport: connection closed")
)

// Handler receives a connection's events, one call at a time per
// connection. Its methods run on the transport's loop and must not block.
type Handler interface {
	// HandleMessage receives one complete client message; on WebSocket a
	// text message is valid UTF-8. data is only valid during the call. It
	// must not block.
	HandleMessage(data []byte)
	// HandleClose is the last call: the connection is gone. err says why:
	// nil or io.EOF for an orderly close, or the transport's error (for
	// WebSocket one wrapping wsconn.ErrProtocol, ErrInvalidUTF8 or
	// ErrTooLarge). It must not block.
	HandleClose(err error)
}

// Conn is one client connection as its session drives it. Every method is
// safe to call from any goroutine and none blocks.
type Conn interface {
	// Start hands the connection its handler and starts serving it. No
	// Handler call happens before Start.
	Start(h Handler)
	// Send queues one message. The transport frames it; payload is not
	// copied and must not be modified afterwards, so that one encoded
	// payload can be shared by every subscriber of a publication. It returns
	// ErrQueueFull when the queue would exceed its byte limit, leaving the
	// queue as it was, and ErrClosed once the connection is closing.
	Send(payload []byte) error
	// Close queues a close with code and reason after whatever is queued
	// and ends the connection once it is written. Later calls do nothing.
	Close(code int, reason string)
	// Abort is Close for a client that does not read: queued messages are
	// dropped and only the close is sent.
	Abort(code int, reason string)
	// LastRead is when the client last sent anything, control frames
	// included.
	LastRead() time.Time
}

// ErrViolation is wrapped by every error with which a transport reports
// that the client broke its protocol (a malformed frame, invalid UTF-8, a
// message over the size limit), so that front ends can tell those closes
// from a client simply going away.
var ErrViolation = errors.New("transport: protocol violation")
