package store

// Fault injection: writers killed mid-copy, writers racing in separate
// processes, a read-only store and a full one. Each case asserts the error
// class, that no entry exists under the final name unless it is complete,
// and that the store recovers.
//
// The child processes are this test binary re-executed with
// STORE_FAULT_CHILD set (see TestMain); they never run tests.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-preflight/preflight"
)

const childEnv = "STORE_FAULT_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(faultChild(mode, os.Getenv("STORE_FAULT_DIR")))
	}
	os.Exit(m.Run())
}

// faultPayload is what every child writes: 4 MiB, so a copy takes several
// reads and a slow reader can be caught in the middle.
var faultPayload = bytes.Repeat([]byte("preflight store fault payload\n"), 4<<20/30)

// slowReader hands out the payload in small pieces with a pause between
// them, and announces the first read on announce (once).
type slowReader struct {
	data     []byte
	chunk    int
	pause    time.Duration
	announce func()
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	if r.announce != nil {
		r.announce()
		r.announce = nil
	} else {
		time.Sleep(r.pause)
	}
	n := copy(p[:min(len(p), r.chunk)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// faultChild runs one child mode and returns its exit status. It reports
// on stdout: "started" once Put is copying, then "entry HEX" or
// "error CLASS: MESSAGE".
func faultChild(mode, dir string) int {
	s, err := Open(dir)
	if err != nil {
		fmt.Printf("error open: %v\n", err)
		return 1
	}
	r := &slowReader{data: faultPayload, chunk: 64 << 10, announce: func() { fmt.Println("started") }}
	switch mode {
	case "stall": // copies the first chunk, then never finishes (killed by the parent)
		r.pause = time.Hour
	case "race": // a slow but complete copy, so that two children overlap
		r.pause = 2 * time.Millisecond
	case "fsize": // the file size limit stands in for a full disk
		lim := syscall.Rlimit{Cur: 1 << 20, Max: 1 << 20}
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
			fmt.Printf("error setrlimit: %v\n", err)
			return 1
		}
	default:
		fmt.Printf("error unknown mode %q\n", mode)
		return 2
	}
	e, err := s.Put(context.Background(), r, PutOptions{Limit: int64(len(faultPayload)), Want: Digests{"sha256": sum256(faultPayload)}})
	if err != nil {
		class := "unclassified"
		var pe *preflight.Error
		if errors.As(err, &pe) {
			class = pe.Class.Error()
		}
		fmt.Printf("error %s: %v\n", class, err)
		return 1
	}
	fmt.Printf("entry %s\n", e.SHA256)
	return 0
}

// startChild starts the test binary in mode on dir and returns it with a
// reader of its report lines.
func startChild(t *testing.T, mode, dir string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, "STORE_FAULT_DIR="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, bufio.NewScanner(out)
}

func expectLine(t *testing.T, sc *bufio.Scanner, prefix string) string {
	t.Helper()
	if !sc.Scan() {
		t.Fatalf("child ended without reporting %q: %v", prefix, sc.Err())
	}
	if !strings.HasPrefix(sc.Text(), prefix) {
		t.Fatalf("child reported %q, want %q", sc.Text(), prefix)
	}
	return strings.TrimSpace(strings.TrimPrefix(sc.Text(), prefix))
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// assertNoEntry fails if the store holds any entry at all, or the
// payload's entry in particular.
func assertNoEntry(t *testing.T, s *Store) {
	t.Helper()
	if names := dirNames(t, filepath.Join(s.Dir(), "sha256")); len(names) != 0 {
		t.Fatalf("the store holds entries %v after a failed write", names)
	}
	if _, ok := s.Lookup(sum256(faultPayload)); ok {
		t.Fatal("the payload is listed under its final name")
	}
	if _, err := s.Open(sum256(faultPayload)); !errors.Is(err, preflight.ErrNotFound) {
		t.Fatalf("Open of the unwritten entry: got %v, want ErrNotFound", err)
	}
}

// assertRecovers puts the payload and opens it, hashing it again.
func assertRecovers(t *testing.T, dir string) {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.Put(context.Background(), bytes.NewReader(faultPayload), PutOptions{Limit: int64(len(faultPayload)), Want: Digests{"sha256": sum256(faultPayload)}})
	if err != nil {
		t.Fatalf("put after the fault: %v", err)
	}
	f, err := s.Open(e.SHA256)
	if err != nil {
		t.Fatalf("open after the fault: %v", err)
	}
	f.Close()
	if n := tempCount(t, s); n != 0 {
		t.Fatalf("%d temporary files left after a successful put", n)
	}
}

// TestWriterKilledMidCopy SIGKILLs a process in the middle of Put: no
// defer runs, so the partial file stays in tmp. It must never appear under
// the final name, a fresh Open must leave it alone while a concurrent
// writer could still own it, and remove it once it is older than
// staleTemp.
func TestWriterKilledMidCopy(t *testing.T) {
	dir := t.TempDir()
	cmd, out := startChild(t, "stall", dir)
	expectLine(t, out, "started")
	// The first chunk is being copied: wait until it reached the file.
	tmp := filepath.Join(dir, "tmp")
	deadline := time.Now().Add(5 * time.Second)
	var partial string
	for partial == "" {
		if names := dirNames(t, tmp); len(names) == 1 {
			if info, err := os.Stat(filepath.Join(tmp, names[0])); err == nil && info.Size() > 0 {
				partial = filepath.Join(tmp, names[0])
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the child never wrote its temporary file")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("child exit: %v, want killed", err)
	}

	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	assertNoEntry(t, s)
	info, err := os.Stat(partial)
	if err != nil {
		t.Fatalf("a fresh temporary file was removed by Open (it may belong to a live writer): %v", err)
	}
	if info.Size() >= int64(len(faultPayload)) {
		t.Fatalf("the child was not killed mid-copy: %d of %d bytes written", info.Size(), len(faultPayload))
	}
	if info.Mode().Perm()&0o077 != 0 {
		t.Fatalf("partial file mode %v is readable by others", info.Mode().Perm())
	}

	// Once older than staleTemp, the next Open removes it.
	old := time.Now().Add(-staleTemp - time.Minute)
	if err := os.Chtimes(partial, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(partial); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the stale partial file survived Open: %v", err)
	}
	assertRecovers(t, dir)
}

// TestTwoProcessesFillOneEntry runs two writers of the same bytes in
// separate processes at once: both succeed and leave one intact entry.
func TestTwoProcessesFillOneEntry(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	type child struct {
		cmd *exec.Cmd
		out *bufio.Scanner
	}
	var children []child
	for range 2 {
		cmd, out := startChild(t, "race", dir)
		children = append(children, child{cmd, out})
	}
	// Both are copying before either finishes: the copy takes 64 reads
	// with a pause between them.
	for _, c := range children {
		expectLine(t, c.out, "started")
	}
	for _, c := range children {
		if got := expectLine(t, c.out, "entry "); got != sum256(faultPayload) {
			t.Fatalf("child stored %s, want %s", got, sum256(faultPayload))
		}
		if err := c.cmd.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, filepath.Join(dir, "sha256")); len(names) != 1 || names[0] != sum256(faultPayload) {
		t.Fatalf("entries %v, want exactly the payload's", names)
	}
	f, err := s.Open(sum256(faultPayload))
	if err != nil {
		t.Fatalf("the entry is not intact: %v", err)
	}
	f.Close()
	if n := tempCount(t, s); n != 0 {
		t.Fatalf("%d temporary files left", n)
	}
}

// canMount reports whether this process may mount a tmpfs (root in a
// namespace that allows it).
func canMount(t *testing.T) bool {
	t.Helper()
	if os.Geteuid() != 0 {
		return false
	}
	probe := t.TempDir()
	if err := syscall.Mount("tmpfs", probe, "tmpfs", 0, "size=64k"); err != nil {
		return false
	}
	syscall.Unmount(probe, 0)
	return true
}

// mountTmpfs mounts a tmpfs with opts on a fresh directory for the test.
func mountTmpfs(t *testing.T, flags uintptr, opts string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", flags, opts); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// TestReadOnlyStore: a store whose directories cannot be written refuses
// with ErrStore and names the cause, and writes nothing. As root,
// permission bits do not stop writes, so the store then lives on a tmpfs
// remounted read-only; otherwise the directories are made 0500.
func TestReadOnlyStore(t *testing.T) {
	var dir string
	switch {
	case os.Geteuid() != 0:
		dir = t.TempDir()
		if _, err := Open(dir); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{"tmp", "sha256"} {
			if err := os.Chmod(filepath.Join(dir, d), 0o500); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() {
			os.Chmod(filepath.Join(dir, "tmp"), 0o700)
			os.Chmod(filepath.Join(dir, "sha256"), 0o700)
		})
	case canMount(t):
		dir = mountTmpfs(t, 0, "size=1m")
		if _, err := Open(dir); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT|syscall.MS_RDONLY, "size=1m"); err != nil {
			t.Fatalf("remount read-only: %v", err)
		}
	default:
		t.Skip("root without mount: permission bits cannot make a directory read-only")
	}
	s, err := Open(dir) // an existing read-only store still opens for reading
	if err != nil {
		t.Fatalf("Open of a read-only store: %v", err)
	}
	_, err = s.Put(context.Background(), bytes.NewReader(faultPayload), PutOptions{Limit: int64(len(faultPayload))})
	if !errors.Is(err, preflight.ErrStore) || !errors.Is(err, preflight.ErrOperational) {
		t.Fatalf("got %v, want ErrStore", err)
	}
	if !errors.Is(err, fs.ErrPermission) && !errors.Is(err, syscall.EROFS) {
		t.Fatalf("error %v does not carry the cause", err)
	}
	assertNoEntry(t, s)
	if n := tempCount(t, s); n != 0 {
		t.Fatalf("%d temporary files in a read-only store", n)
	}
}

// TestFullStore: the disk fills up in the middle of a Put. The error must
// say the store failed (ErrStore, with the cause), not blame the source,
// and nothing may be left behind.
//
// Two simulations: a tiny tmpfs (a real ENOSPC; needs root and mount) and,
// everywhere, a child process with RLIMIT_FSIZE of 1 MiB, whose writes past
// the limit fail with EFBIG exactly as a full disk fails them.
func TestFullStore(t *testing.T) {
	t.Run("tmpfs ENOSPC", func(t *testing.T) {
		if !canMount(t) {
			t.Skip("needs root and mount; the RLIMIT_FSIZE case covers the same path")
		}
		dir := mountTmpfs(t, 0, "size=1m")
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Put(context.Background(), bytes.NewReader(faultPayload), PutOptions{Limit: int64(len(faultPayload))})
		if !errors.Is(err, preflight.ErrStore) || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("got %v, want ErrStore wrapping ENOSPC", err)
		}
		assertNoEntry(t, s)
		if n := tempCount(t, s); n != 0 {
			t.Fatalf("%d temporary files left on a full disk", n)
		}
	})
	t.Run("RLIMIT_FSIZE", func(t *testing.T) {
		dir := t.TempDir()
		cmd, out := startChild(t, "fsize", dir)
		expectLine(t, out, "started")
		report := expectLine(t, out, "error ")
		if err := cmd.Wait(); err == nil {
			t.Fatal("child succeeded past its file size limit")
		}
		if !strings.HasPrefix(report, preflight.ErrStore.Error()+":") || !strings.Contains(report, "file too large") {
			t.Fatalf("child reported %q, want a store failure caused by EFBIG", report)
		}
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		assertNoEntry(t, s)
		if n := tempCount(t, s); n != 0 {
			t.Fatalf("%d temporary files left by a failed put", n)
		}
		assertRecovers(t, dir)
	})
}
