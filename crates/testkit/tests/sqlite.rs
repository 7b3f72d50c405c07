use sqlx::{Connection, SqliteConnection};

#[tokio::test]
async fn sqlite_path_holds_a_usable_database() {
    let (dir, path) = testkit::sqlite_path();
    let mut conn = SqliteConnection::connect(&testkit::sqlite_url(&path)).await.unwrap();
    sqlx::query("CREATE TABLE t (x INTEGER)").execute(&mut conn).await.unwrap();
    let one: i64 = sqlx::query_scalar("SELECT 1").fetch_one(&mut conn).await.unwrap();
    assert_eq!(one, 1);
    conn.close().await.unwrap();
    assert!(path.is_file());
    let root = dir.path().to_owned();
    drop(dir);
    assert!(!root.exists());
}
