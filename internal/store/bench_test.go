package store

import (
	"bytes"
	"context"
	"os"
	"testing"
)

// benchEntry is a 4 MiB artifact, the size of a small server binary.
var benchEntry = bytes.Repeat([]byte("0123456789abcdef"), 4<<20/16)

// BenchmarkPutHit is a Put of bytes the store already holds, pinned by
// SHA-256: the entry is found by name and the source is not read.
func BenchmarkPutHit(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	want := Digests{"sha256": sum256(benchEntry)}
	opts := PutOptions{Limit: int64(len(benchEntry)), Size: int64(len(benchEntry)), Want: want}
	if _, err := s.Put(context.Background(), bytes.NewReader(benchEntry), opts); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Put(context.Background(), failingReader{}, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutMiss writes the 4 MiB entry into an empty store: one copy,
// hashed on the way, synced and renamed. The entry is removed between
// iterations, outside the timer.
func BenchmarkPutMiss(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	opts := PutOptions{Limit: int64(len(benchEntry)), Want: Digests{"sha256": sum256(benchEntry)}}
	b.SetBytes(int64(len(benchEntry)))
	for b.Loop() {
		e, err := s.Put(context.Background(), bytes.NewReader(benchEntry), opts)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		removeEntry(b, e.Path)
		b.StartTimer()
	}
}

// BenchmarkOpenHit opens the 4 MiB entry for execution: the one hash pass
// a warm launch pays.
func BenchmarkOpenHit(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	e, err := s.Put(context.Background(), bytes.NewReader(benchEntry), PutOptions{Limit: int64(len(benchEntry))})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(e.Size)
	for b.Loop() {
		f, err := s.Open(e.SHA256)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

func removeEntry(b *testing.B, path string) {
	b.Helper()
	if err := os.Remove(path); err != nil {
		b.Fatal(err)
	}
}
