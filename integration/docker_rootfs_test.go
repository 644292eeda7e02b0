package integration

// The Docker image without a Docker engine: the root filesystem the
// Dockerfile's final stage copies (contrib/docker/rootfs.sh) run the way
// `docker run --network host` runs it, as far as util-linux goes: USER,
// ENV, ENTRYPOINT and CMD from the Dockerfile, a fresh network namespace
// (nothing collides with the host's port 53), the config bind-mounted
// read-only, the state volume writable, chroot and setuid/setgid by
// unshare(1), no inheritable capabilities (setpriv(1)).

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dnslb/dnslb/internal/dnstest"
)

// imageSpec is what the Dockerfile's final stage says about running it.
type imageSpec struct {
	uid, gid   int
	env        []string // KEY=value
	entrypoint []string
	cmd        []string
	volumes    []string
}

// parseDockerfile reads the final stage's USER, ENV, ENTRYPOINT, CMD and
// VOLUME, in the forms this Dockerfile uses (numeric USER, one ENV
// KEY=value per line, JSON arrays): anything else fails the test, so the
// rootfs run cannot silently drift from the image.
func parseDockerfile(t *testing.T, path string) imageSpec {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var spec imageSpec
	user := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		jsonArray := func() []string {
			var v []string
			if err := json.Unmarshal([]byte(rest), &v); err != nil {
				t.Fatalf("%s: %s %s: want a JSON array: %v", path, instr, rest, err)
			}
			return v
		}
		switch strings.ToUpper(instr) {
		case "FROM":
			spec, user = imageSpec{}, "" // only the final stage counts
		case "USER":
			user = rest
		case "ENV":
			if k, _, ok := strings.Cut(rest, "="); !ok || strings.ContainsAny(rest, " \t") || k == "" {
				t.Fatalf("%s: ENV %s: want one KEY=value", path, rest)
			}
			spec.env = append(spec.env, rest)
		case "ENTRYPOINT":
			spec.entrypoint = jsonArray()
		case "CMD":
			spec.cmd = jsonArray()
		case "VOLUME":
			spec.volumes = append(spec.volumes, jsonArray()...)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	u, g, ok := strings.Cut(user, ":")
	var errU, errG error
	spec.uid, errU = strconv.Atoi(u)
	spec.gid, errG = strconv.Atoi(g)
	if !ok || errU != nil || errG != nil || spec.uid == 0 {
		t.Fatalf("%s: USER %q: want a numeric non-root uid:gid", path, user)
	}
	if len(spec.entrypoint) == 0 {
		t.Fatalf("%s: no ENTRYPOINT in the final stage", path)
	}
	return spec
}

// TestDockerRootfs: the image's non-root user binds 53/udp and 53/tcp in
// a network namespace of its own thanks to the binary's file capability
// alone, answers dig, and writes its state file into the volume; and
// without the capability, or where Docker would keep it from taking
// effect, it fails to bind (outside the bounding set: to start), saying so.
func TestDockerRootfs(t *testing.T) {
	requireRoot(t)
	tools := map[string]string{}
	for _, name := range []string{"bash", "unshare", "setpriv", "nsenter", "ip", "mount", "dig", "setcap", "getcap"} {
		tools[name] = requireTool(t, name)
	}
	if out, err := exec.Command(tools["unshare"], "--net", "--mount", "true").CombinedOutput(); err != nil {
		skipOrFail(t, fmt.Sprintf("unshare --net --mount: %v: %s", err, out))
	}
	spec := parseDockerfile(t, "../Dockerfile")
	if len(spec.volumes) != 1 || spec.volumes[0] != "/var/lib/dnslb" {
		t.Fatalf("Dockerfile VOLUME %v, want [/var/lib/dnslb]: update this test with it", spec.volumes)
	}
	if !slices.Contains(spec.env, "DNSLB_STATE_FILE=/var/lib/dnslb/dnslb.state.json") {
		t.Fatalf("Dockerfile ENV %v: want DNSLB_STATE_FILE in the volume", spec.env)
	}

	root := filepath.Join(t.TempDir(), "rootfs")
	if out, err := exec.Command(tools["bash"], "../contrib/docker/rootfs.sh", root).CombinedOutput(); err != nil {
		t.Fatalf("rootfs.sh: %v\n%s", err, out)
	}
	bin := filepath.Join(root, "usr/local/bin/dnslb")
	if out, err := exec.Command(tools["getcap"], bin).CombinedOutput(); err != nil || !strings.Contains(string(out), "cap_net_bind_service=ep") {
		t.Fatalf("getcap %s: %v %q, want cap_net_bind_service=ep", bin, err, out)
	}
	passwd, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil || !strings.Contains(string(passwd), fmt.Sprintf(":x:%d:%d:", spec.uid, spec.gid)) {
		t.Fatalf("rootfs /etc/passwd has no entry for %d:%d: %v\n%s", spec.uid, spec.gid, err, passwd)
	}
	// What a named volume is initialised from.
	if st, err := os.Stat(filepath.Join(root, "var/lib/dnslb")); err != nil ||
		st.Sys().(*syscall.Stat_t).Uid != uint32(spec.uid) || st.Mode().Perm() != 0o700 {
		t.Fatalf("rootfs /var/lib/dnslb: %v %v, want a 0700 directory of uid %d", st, err, spec.uid)
	}

	conf := t.TempDir()
	if err := os.WriteFile(filepath.Join(conf, "dnslb.yaml"), []byte(`listen: [":53"]
admin: ""
zones:
  - origin: example.test.
    file: example.test.zone
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(conf, opZoneName), []byte(opZone(1, "www IN A 192.0.2.80\n")), 0o644); err != nil {
		t.Fatal(err)
	}

	const bindCap = 1 << 10 // CAP_NET_BIND_SERVICE
	// Where the capability does not take effect, dnslb fails to bind; or,
	// outside the bounding set, the kernel refuses to run the binary at all
	// (a file capability with the effective bit that cannot be granted:
	// docker run fails with "exec /usr/local/bin/dnslb: operation not
	// permitted").
	const bindFails = "bind: permission denied"
	for _, tc := range []struct {
		name    string
		fileCap bool
		setpriv []string // more setpriv options: what Docker options do
		fails   string   // "": serves; else in its output
	}{
		{name: "file capability", fileCap: true},
		{name: "no file capability", fileCap: false, fails: bindFails},
		// docker run --security-opt no-new-privileges; Kubernetes
		// allowPrivilegeEscalation: false.
		{name: "no_new_privs", fileCap: true, setpriv: []string{"--no-new-privs"}, fails: bindFails},
		// docker run --cap-drop ALL without --cap-add NET_BIND_SERVICE.
		// unshare still needs to chroot and change ids.
		{name: "not in the bounding set", fileCap: true, setpriv: []string{"--bounding-set=-all,+sys_chroot,+setuid,+setgid"},
			fails: "failed to execute /usr/local/bin/dnslb: Operation not permitted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Each case sets the capability it needs (rootfs.sh's own
			// setcap was checked above): they do not depend on their order.
			if tc.fileCap {
				if out, err := exec.Command(tools["setcap"], "cap_net_bind_service=+ep", bin).CombinedOutput(); err != nil {
					t.Fatalf("setcap: %v\n%s", err, out)
				}
			} else {
				// Fails when there is none to remove: getcap says.
				_ = exec.Command(tools["setcap"], "-r", bin).Run()
				if out, err := exec.Command(tools["getcap"], bin).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
					t.Fatalf("getcap after setcap -r: %v %q, want none", err, out)
				}
			}
			// A named volume's first use: a copy of the image's directory.
			vol := t.TempDir()
			if err := os.Chown(vol, spec.uid, spec.gid); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(vol, 0o700); err != nil {
				t.Fatal(err)
			}

			// unshare --net --mount keeps the same pid through the exec
			// chain (no --fork): p's pid ends up being dnslb's.
			script := `set -e
"$IP" link set lo up
"$MOUNT" --bind "$CONF" "$ROOT/etc/dnslb"
"$MOUNT" -o remount,bind,ro "$ROOT/etc/dnslb"
"$MOUNT" --bind "$VOL" "$ROOT/var/lib/dnslb"
exec "$@"`
			argv := []string{"--net", "--mount", "--", tools["bash"], "-c", script, "sh", tools["setpriv"], "--inh-caps=-all"}
			argv = append(argv, tc.setpriv...)
			argv = append(argv, "--", tools["unshare"], "--root="+root, "--wd=/",
				"--setgid="+strconv.Itoa(spec.gid), "--setuid="+strconv.Itoa(spec.uid), "--")
			argv = append(append(argv, spec.entrypoint...), spec.cmd...)
			env := append([]string{"IP=" + tools["ip"], "MOUNT=" + tools["mount"], "CONF=" + conf, "VOL=" + vol, "ROOT=" + root}, spec.env...)
			p, err := startProcEnv(t, env, tools["unshare"], argv...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.stop)
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("dnslb output:\n%s", p.out.String())
				}
			})
			pid := strconv.Itoa(p.cmd.Process.Pid)

			if tc.fails != "" {
				select {
				case <-p.exited:
				case <-time.After(startupDeadline):
					t.Fatalf("still running after %v without the capability taking effect", startupDeadline)
				}
				out := p.out.String()
				if p.err == nil || !strings.Contains(out, tc.fails) || (tc.fails == bindFails && !strings.Contains(out, ":53")) {
					t.Fatalf("exit %v; want a failure with %q", p.err, tc.fails)
				}
				t.Logf("fails as it should: %s", strings.TrimSpace(out))
				return
			}

			dig := func(args ...string) string {
				a := append([]string{"--target", pid, "--net", tools["dig"], "@127.0.0.1", "-p", "53", "+short", "+time=1", "+tries=1"}, args...)
				out, _ := exec.Command(tools["nsenter"], a...).CombinedOutput()
				return strings.TrimSpace(string(out))
			}
			for _, transport := range []string{"+notcp", "+tcp"} {
				dnstest.Eventually(t, startupDeadline, "dig "+transport+" www.example.test A", func() (bool, string) {
					if p.hasExited() {
						t.Fatalf("dnslb exited: %v", p.err)
					}
					got := dig(transport, "www.example.test", "A")
					return got == "192.0.2.80", got
				})
			}

			// It answered, so the exec chain is done: pid is dnslb, the
			// image's user, with no capability but the file's.
			status, err := os.ReadFile("/proc/" + pid + "/status")
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{
				"Uid":    fmt.Sprintf("%d\t%d\t%d\t%d", spec.uid, spec.uid, spec.uid, spec.uid),
				"Gid":    fmt.Sprintf("%d\t%d\t%d\t%d", spec.gid, spec.gid, spec.gid, spec.gid),
				"Groups": "",
				"CapInh": fmt.Sprintf("%016x", 0),
				"CapPrm": fmt.Sprintf("%016x", bindCap),
				"CapEff": fmt.Sprintf("%016x", bindCap),
				"CapAmb": fmt.Sprintf("%016x", 0),
			}
			for _, line := range strings.Split(string(status), "\n") {
				k, v, _ := strings.Cut(line, ":")
				if w, ok := want[k]; ok {
					if v = strings.TrimSpace(v); v != w {
						t.Errorf("/proc/%s/status %s: %q, want %q", pid, k, v, w)
					}
					delete(want, k)
				}
			}
			if len(want) > 0 {
				t.Errorf("/proc/%s/status lacks %v", pid, want)
			}

			// SIGTERM as docker stop sends it: the state file is saved
			// into the volume, and nothing lands in the read-only config.
			p.stop()
			if p.err != nil {
				t.Fatalf("exit after SIGTERM: %v", p.err)
			}
			st, err := os.Stat(filepath.Join(vol, "dnslb.state.json"))
			if err != nil {
				t.Fatalf("no state file in the volume: %v", err)
			}
			if st.Sys().(*syscall.Stat_t).Uid != uint32(spec.uid) {
				t.Errorf("state file owned by uid %d, want %d", st.Sys().(*syscall.Stat_t).Uid, spec.uid)
			}
			if ents, _ := os.ReadDir(conf); len(ents) != 2 {
				t.Errorf("config directory holds %d entries, want its 2 files only", len(ents))
			}
		})
	}
}
