//! A stand-in for an AWS endpoint: canned HTTP answers on a loopback port.

/// An AWS JSON-protocol HTTP/1.1 answer, `Connection: close`: what a test's stand-in for an AWS endpoint sends.
pub fn amz_json_answer(status: u16, body: &str) -> String {
    format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A loopback HTTP/1.1 server for a client's own tests: one connection per answer, in order, each request
/// read until it holds `last_text` (text at the end of its body), then answered `(status, body)` with
/// `Connection: close`. Returns the server's URL and, once every answer is given, the requests as read.
pub async fn serve_once_each(
    answers: Vec<(u16, &'static str)>,
    last_text: &'static str,
) -> (String, tokio::task::JoinHandle<Vec<String>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("a bound address"));
    let server = tokio::spawn(async move {
        let mut requests = Vec::new();
        for (status, body) in answers {
            let (mut socket, _) = listener.accept().await.expect("a connection");
            let mut request = Vec::new();
            let mut chunk = [0u8; 4096];
            while !String::from_utf8_lossy(&request).contains(last_text) {
                let n = socket.read(&mut chunk).await.expect("a readable request");
                assert!(n > 0, "the request ended early");
                request.extend_from_slice(&chunk[..n]);
            }
            requests.push(String::from_utf8_lossy(&request).into_owned());
            socket.write_all(amz_json_answer(status, body).as_bytes()).await.expect("a writable socket");
        }
        requests
    });
    (url, server)
}
