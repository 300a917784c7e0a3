package gate

import (
	"bufio"
	"context"
	"io"
	"testing"
	"time"
)

// TestServerOutputDrainedAtEnd: a server that still writes after its input
// ends must not find its output closed under it (a real server would die of
// a broken pipe and print a stack trace into the host's logs).
func TestServerOutputDrainedAtEnd(t *testing.T) {
	g, err := New(Config{Decide: func(Kind, []Item) SurfaceDecision { return SurfaceDecision{} }})
	if err != nil {
		t.Fatal(err)
	}
	hostInR, hostInW := io.Pipe()
	serverInR, serverInW := io.Pipe()   // gate → server
	serverOutR, serverOutW := io.Pipe() // server → gate
	writeErr := make(chan error, 1)
	go func() {
		// The server: read until its input ends, then say goodbye.
		io.Copy(io.Discard, bufio.NewReader(serverInR))
		var err error
		for i := 0; i < 5 && err == nil; i++ {
			_, err = io.WriteString(serverOutW, `{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"bye"}}`+"\n")
		}
		serverOutW.Close()
		writeErr <- err
	}()
	done := make(chan error, 1)
	go func() { done <- g.Run(context.Background(), hostInR, io.Discard, serverOutR, serverInW) }()
	hostInW.Close() // the host leaves
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	if err := <-writeErr; err != nil {
		t.Fatalf("the server's farewell writes failed: %v", err)
	}
}
