use sqlx::{Connection, PgConnection};

async fn current_database(url: &str) -> String {
    let mut conn = PgConnection::connect(url).await.expect("connect");
    let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut conn).await.unwrap();
    assert_eq!(one, 1);
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(tables, 0, "a fresh database is empty");
    let name: String =
        sqlx::query_scalar("SELECT current_database()").fetch_one(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    name
}

#[tokio::test]
async fn each_call_gives_a_fresh_database() {
    let a = testkit::postgres_url().await;
    let b = testkit::postgres_url().await;
    assert_ne!(a, b);
    let (name_a, name_b) = (current_database(&a).await, current_database(&b).await);
    assert_ne!(name_a, name_b);
    assert!(a.contains(&name_a) && b.contains(&name_b));

    // What one test does to its database is invisible in another's.
    let mut conn = PgConnection::connect(&a).await.unwrap();
    sqlx::query("CREATE TABLE t (x int)").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    current_database(&b).await;
}

#[tokio::test]
async fn concurrent_calls_work() {
    let urls = futures_join(8).await;
    let mut unique = urls.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), urls.len());
    for url in &urls {
        current_database(url).await;
    }
}

async fn futures_join(n: usize) -> Vec<String> {
    let tasks: Vec<_> = (0..n).map(|_| tokio::spawn(testkit::postgres_url())).collect();
    let mut urls = Vec::new();
    for task in tasks {
        urls.push(task.await.unwrap());
    }
    urls
}
