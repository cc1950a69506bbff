//! Aligned tables in the layout runc prints (Go's tabwriter with a minimum
//! width of 12, padding 3).

/// Formats rows (the first is the header) into aligned columns. The last
/// column is not padded.
pub fn format_table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i + 1 < row.len() {
                widths[i] = widths[i].max((cell.chars().count() + 3).max(12));
            }
        }
    }
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let rows = vec![
            vec!["ID".into(), "PID".into(), "STATUS".into()],
            vec![
                "a-very-long-container".into(),
                "12345".into(),
                "running".into(),
            ],
        ];
        let t = format_table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            format!("ID{}PID{}STATUS", " ".repeat(22), " ".repeat(9))
        );
        assert_eq!(lines[1].find("12345"), lines[0].find("PID"));
        assert_eq!(lines[1].find("running"), lines[0].find("STATUS"));
    }
}
