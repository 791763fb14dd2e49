import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.dsl.ExecListener;
import io.fabric8.kubernetes.client.dsl.ExecWatch;
import io.fabric8.kubernetes.client.okhttp.OkHttpClientFactory;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * One Jenkins {@code container('x') { sh ... }} exec, made as the kubernetes-plugin's
 * ContainerExecDecorator makes it with fabric8 7.3.1 over OkHttp: {@code sh} in the container
 * with stdin (a 16 KiB input pipe), stdout and stderr, no terminal, over WebSocket
 * {@code v4.channel.k8s.io}; the step's script (cd, exports, the command, exit) is read from
 * this program's stdin and written to the exec's stdin. Prints the exec's stdout and stderr and
 * exits with the code fabric8 reads from the channel-3 status, or -1 (255) saying why.
 *
 * <p>Usage: {@code StepExec <kubeconfig> <namespace> <pod> <container> [timeout-seconds]}
 */
public final class StepExec {
  /** The plugin's STDIN_BUFFER_SIZE (JENKINS-50429). */
  private static final int STDIN_BUFFER_SIZE = 16 * 1024;
  /** The plugin's websocketConnectionTimeout default. */
  private static final long CONNECT_TIMEOUT_S = 30;
  /** The plugin's COMMAND_FINISHED_TIMEOUT_MS: a close this soon is a failed start. */
  private static final long FINISHED_TOO_SOON_MS = 200;

  private StepExec() {}

  public static void main(String[] args) throws Exception {
    System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
    if (args.length < 4) {
      System.err.println("usage: StepExec <kubeconfig> <namespace> <pod> <container> [timeout-s]");
      System.exit(2);
    }
    long timeoutS = args.length > 4 ? Long.parseLong(args[4]) : 120;
    byte[] script = System.in.readAllBytes();
    String kubeconfig = Files.readString(Path.of(args[0]), StandardCharsets.UTF_8);
    Config config = Config.fromKubeconfig(kubeconfig);
    int code;
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    try (KubernetesClient client =
        new KubernetesClientBuilder()
            .withConfig(config)
            .withHttpClientFactory(new OkHttpClientFactory())
            .build()) {
      code = step(client, args[1], args[2], args[3], script, timeoutS, out, err);
    }
    System.out.write(out.toByteArray());
    System.out.flush();
    System.err.write(err.toByteArray());
    System.err.flush();
    System.exit(code);
  }

  private static int step(
      KubernetesClient client,
      String namespace,
      String pod,
      String container,
      byte[] script,
      long timeoutS,
      ByteArrayOutputStream out,
      ByteArrayOutputStream err)
      throws IOException, InterruptedException {
    CountDownLatch started = new CountDownLatch(1);
    CountDownLatch finished = new CountDownLatch(1);
    StringBuilder why = new StringBuilder();
    ExecListener listener =
        new ExecListener() {
          @Override
          public void onOpen() {
            started.countDown();
          }

          @Override
          public void onFailure(Throwable t, Response response) {
            synchronized (why) {
              why.append("onFailure: ").append(t);
              if (response != null) {
                why.append(" (HTTP ").append(response.code()).append(')');
              }
              why.append('\n');
            }
            started.countDown();
            finished.countDown();
          }

          @Override
          public void onClose(int code, String reason) {
            synchronized (why) {
              why.append("onClose: ").append(code).append(' ').append(reason).append('\n');
            }
            started.countDown();
            finished.countDown();
          }
        };
    // The plugin's builder calls, in its order (ContainerExecDecorator.openExecInContainer).
    ExecWatch watch =
        client
            .pods()
            .inNamespace(namespace)
            .withName(pod)
            .inContainer(container)
            .redirectingInput(STDIN_BUFFER_SIZE)
            .writingOutput(out)
            .writingError(err)
            .usingListener(listener)
            .exec("sh");
    try {
      if (!started.await(CONNECT_TIMEOUT_S, TimeUnit.SECONDS)) {
        return fail("timed out waiting for the WebSocket connection");
      }
      if (finished.await(FINISHED_TOO_SOON_MS, TimeUnit.MILLISECONDS)) {
        return fail("process exited immediately after creation\n" + why);
      }
      PrintStream in = new PrintStream(watch.getInput(), true, StandardCharsets.UTF_8);
      in.write(script);
      in.flush();
      if (!finished.await(timeoutS, TimeUnit.SECONDS)) {
        return fail("the exec did not end within " + timeoutS + " s\n" + why);
      }
      Integer code;
      try {
        code = watch.exitCode().get(10, TimeUnit.SECONDS);
      } catch (Exception e) {
        return fail("no exit code: " + e + "\n" + why);
      }
      if (code == null) {
        return fail("no exit code (null)\n" + why);
      }
      return code;
    } finally {
      watch.close();
    }
  }

  private static int fail(String why) {
    System.err.println("fabric8 exec: " + why);
    return -1;
  }
}
