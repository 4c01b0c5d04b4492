import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

/* AckClient HOST PORT MESSAGE: the Sockets Tutorial's client in Java, for
 * `sockit serve ack`. TCP is a byte stream: read() may return only part of
 * the reply, so the client reads until the server closes (read() == -1). */
public class AckClient {
    public static void main(String[] args) {
        if (args.length != 3 || !args[1].matches("[0-9]{1,5}")) {
            System.err.println("usage: java AckClient HOST PORT MESSAGE");
            System.exit(2);
        }
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(args[0], Integer.parseInt(args[1])), 10000);
            s.setSoTimeout(10000); // a silent server is an error, not a hang
            s.getOutputStream().write((args[2] + "\n").getBytes(StandardCharsets.UTF_8));
            s.shutdownOutput(); // the message is complete
            ByteArrayOutputStream reply = new ByteArrayOutputStream();
            InputStream in = s.getInputStream();
            byte[] buf = new byte[4096];
            for (int n; (n = in.read(buf)) != -1;) // 1..4096 bytes each time
                reply.write(buf, 0, n);
            System.out.println(reply.toString(StandardCharsets.UTF_8));
        } catch (IOException | IllegalArgumentException e) {
            System.err.println("AckClient: " + args[0] + " port " + args[1] + ": " + e.getMessage());
            System.exit(1);
        }
    }
}
