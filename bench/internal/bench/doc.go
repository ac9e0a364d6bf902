// Package bench is herald-bench's load generator. It speaks only the Pusher
// Channels protocol (WebSocket protocol 7 and the signed REST API), so it
// measures Herald or any other Pusher-compatible server.
//
// Every benchmark event carries its stream, its sequence number in that
// stream and the publisher's clock (unix nanoseconds) inside the event data,
// so each connection checks that it got every event exactly once and in
// order, and the end-to-end latency is measured without decoding JSON.
//
// Connections are read by a few epoll loops (Linux) rather than by a
// goroutine each: an idle connection then costs a file descriptor and a small
// struct, which lets one 2-core machine hold 100,000 of them next to the
// server it measures. The goroutine reader remains for other systems and for
// comparison (--reader goroutine). With the epoll reader, connections that
// need nothing but connection_established (connect, idle without
// --subscribe) are also dialed without the Go runtime: see rawdial.go. The
// others are dialed with gobwas/ws and handed to the reader afterwards.
package bench
