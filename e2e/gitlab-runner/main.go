// gitlab-job runs a job's stages in a GitLab Runner job pod the way GitLab Runner's Kubernetes
// executor does (its attach strategy, the only one since the exec strategy was removed), with
// the same client library, client-go over SPDY:
//
//  1. the stage's script is saved into the scripts emptyDir: an exec of the build container's
//     shell command with a saving script on its stdin;
//  2. the stage is started by an attach to the build container with stdin only (no stdout,
//     stderr or terminal) that writes one line to the container's main shell: run the stage in
//     the background through the detect-shell script, its output appended to the log file in
//     the logs emptyDir;
//  3. the output is read back by an exec in the helper container that follows the log file
//     from the last offset (the runner runs `gitlab-runner-helper read-logs` there; this one
//     runs `tail`, the helper binary is not available here), until the JSON line the stage's
//     exit trap prints: {"command_exit_code": N, "script": "<path>"}.
//
// Usage: gitlab-job KUBECONFIG NAMESPACE POD SCRIPTS_DIR LOGS_DIR NAME=FILE...
// Each FILE holds a stage's commands. Prints "stage NAME exited CODE" and the stage's log
// lines as "  | line"; exits 0 once every stage has ended, 1 on an error of its own.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/remotecommand"
)

// The shell the runner gives its build and helper containers: the first shell the image has,
// reading what comes next (a script on stdin, or the file named by its arguments).
const detectShell = `for s in /usr/local/bin/bash /usr/bin/bash /bin/bash /usr/local/bin/sh /usr/bin/sh /bin/sh /busybox/sh; do
	if [ -x "$s" ]; then exec "$s" "$@"; fi
done
echo shell not found
exit 1
`

type job struct {
	client  kubernetes.Interface
	config  *rest.Config
	ns, pod string
	scripts string
	logFile string
	offset  int64
}

func main() {
	if len(os.Args) < 7 {
		fmt.Fprintln(os.Stderr, "usage: gitlab-job KUBECONFIG NAMESPACE POD SCRIPTS_DIR LOGS_DIR NAME=FILE...")
		os.Exit(2)
	}
	config, err := clientcmd.BuildConfigFromFlags("", os.Args[1])
	check(err)
	client, err := kubernetes.NewForConfig(config)
	check(err)
	j := &job{
		client:  client,
		config:  config,
		ns:      os.Args[2],
		pod:     os.Args[3],
		scripts: os.Args[4],
		logFile: os.Args[5] + "/output.log",
	}
	ctx := context.Background()
	check(j.save(ctx, "detect_shell_script", detectShell))
	for _, stage := range os.Args[6:] {
		name, file, ok := strings.Cut(stage, "=")
		if !ok {
			check(fmt.Errorf("a stage is NAME=FILE, got %q", stage))
		}
		commands, err := os.ReadFile(file)
		check(err)
		code, lines, err := j.run(ctx, name, string(commands))
		check(err)
		fmt.Printf("stage %s exited %d\n", name, code)
		for _, line := range lines {
			fmt.Printf("  | %s\n", line)
		}
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "gitlab-job:", err)
		os.Exit(1)
	}
}

// run saves, starts and follows one stage; its exit code and log lines.
func (j *job) run(ctx context.Context, name, commands string) (int, []string, error) {
	path := j.scripts + "/" + name
	// The stage script reports its own end, as the runner's bash scripts do with their trap.
	script := "stage_end() {\n\tcode=$?\n\techo\n\techo \"{\\\"command_exit_code\\\": $code, \\\"script\\\": \\\"$0\\\"}\"\n\texit 0\n}\n" +
		"trap stage_end EXIT\nset -e\n" + commands
	if err := j.save(ctx, name, script); err != nil {
		return 0, nil, err
	}
	line := fmt.Sprintf("sh -c '(%s/detect_shell_script %s 2>&1 | tee -a %s) &'", j.scripts, path, j.logFile)
	if err := j.attach(ctx, "build", line); err != nil {
		return 0, nil, fmt.Errorf("attaching to start stage %s: %w", name, err)
	}
	return j.follow(ctx, path)
}

// save writes a script into the scripts volume through the build container's shell.
func (j *job) save(ctx context.Context, name, script string) error {
	path := j.scripts + "/" + name
	saving := fmt.Sprintf("cat > '%s' <<'GITLAB_JOB_EOF'\n%s\nGITLAB_JOB_EOF\nchmod 0755 '%s'\n", path, script, path)
	var stderr bytes.Buffer
	err := j.stream(ctx, "exec", &corev1.PodExecOptions{
		Container: "build",
		Command:   []string{"sh", "-c", detectShell},
		Stdin:     true,
		Stdout:    true,
		Stderr:    true,
	}, remotecommand.StreamOptions{Stdin: strings.NewReader(saving), Stdout: io.Discard, Stderr: &stderr})
	if err != nil {
		return fmt.Errorf("saving %s: %w (stderr: %s)", path, err, stderr.String())
	}
	return nil
}

// attach writes one line to the container's main process, as the runner's AttachOptions do:
// the pod must be Running, the attach carries stdin only, and ends with it.
func (j *job) attach(ctx context.Context, container, line string) error {
	pod, err := j.client.CoreV1().Pods(j.ns).Get(ctx, j.pod, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if pod.Status.Phase != corev1.PodRunning {
		return fmt.Errorf("pod %s is %s, not Running", j.pod, pod.Status.Phase)
	}
	return j.stream(ctx, "attach", &corev1.PodAttachOptions{
		Container: container,
		Stdin:     true,
	}, remotecommand.StreamOptions{Stdin: strings.NewReader(line + "\n")})
}

// follow reads the log file from the last offset through an exec in the helper container until
// the stage's exit line; the exit code and the lines before it.
func (j *job) follow(ctx context.Context, script string) (int, []string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	reader, writer := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := j.stream(ctx, "exec", &corev1.PodExecOptions{
			Container: "helper",
			Command: []string{"sh", "-c",
				`until [ -f "$1" ]; do sleep 0.1; done; exec tail -c "+$0" -f "$1"`,
				fmt.Sprint(j.offset + 1), j.logFile},
			Stdout: true,
			Stderr: true,
		}, remotecommand.StreamOptions{Stdout: writer, Stderr: writer})
		writer.CloseWithError(err)
		done <- err
	}()
	var lines []string
	scanner := bufio.NewScanner(reader)
	for scanner.Scan() {
		line := scanner.Text()
		j.offset += int64(len(line)) + 1
		var status struct {
			Code   *int   `json:"command_exit_code"`
			Script string `json:"script"`
		}
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &status) == nil && status.Code != nil && status.Script == script {
			cancel()
			<-done
			// The blank line the trap prints before its JSON is not the stage's.
			if n := len(lines); n > 0 && lines[n-1] == "" {
				lines = lines[:n-1]
			}
			return *status.Code, lines, nil
		}
		lines = append(lines, line)
	}
	err := <-done
	if err == nil {
		err = scanner.Err()
	}
	return 0, lines, fmt.Errorf("the log of %s ended before its exit line: %v", script, err)
}

func (j *job) stream(ctx context.Context, sub string, opts runtime.Object, streams remotecommand.StreamOptions) error {
	req := j.client.CoreV1().RESTClient().Post().
		Resource("pods").Name(j.pod).Namespace(j.ns).SubResource(sub).
		VersionedParams(opts, scheme.ParameterCodec)
	executor, err := remotecommand.NewSPDYExecutor(j.config, http.MethodPost, req.URL())
	if err != nil {
		return err
	}
	return executor.StreamWithContext(ctx, streams)
}

