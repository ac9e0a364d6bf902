//go:build !linux

package wsconn

import (
	"bufio"
	"errors"
	"net"
)

const defaultTransport = TransportGoroutine

type pollerSet struct{}

func newPollerSet(Config) (*pollerSet, error) {
	return nil, errors.New("the epoll transport needs Linux; use the goroutine transport")
}

func (*pollerSet) adopt(net.Conn, *bufio.Reader) (Conn, error) { return nil, errors.New("unsupported") }
func (*pollerSet) close()                                      {}
