//! Inline SVG bar charts: no JavaScript, no fonts beyond the system
//! default, so they render the same in any browser, offline.

use super::html::escape;

/// Model colours, by model index (colour-blind-friendly Tableau 10).
pub const PALETTE: &[&str] = &[
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1", "#edc948", "#9c755f",
];

/// The colour of the `i`-th model.
pub fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// A grouped bar chart: one group per label in `groups`, one bar per series
/// (model) in each group. `max` fixes the scale (e.g. 1.0 for rates).
pub fn grouped_bars(
    id: &str,
    title: &str,
    groups: &[String],
    series: &[(String, Vec<f64>)],
    max: Option<f64>,
    fmt: &dyn Fn(f64) -> String,
) -> String {
    let bar_w = 26.0;
    let gap = 22.0;
    let left = 56.0;
    let group_w = bar_w * series.len().max(1) as f64 + gap;
    let width = (left + 12.0 + group_w * groups.len().max(1) as f64).max(380.0);
    // Legend entries wrap onto as many lines as they need.
    let mut legend = Vec::new();
    let (mut lx, mut ly) = (left, 26.0);
    for (i, (name, _)) in series.iter().enumerate() {
        let w = 24.0 + 6.5 * name.chars().count() as f64;
        if lx > left && lx + w > width - 8.0 {
            lx = left;
            ly += 15.0;
        }
        legend.push(format!(
            r#"<rect x="{lx:.0}" y="{ly:.0}" width="10" height="10" fill="{}"/><text x="{:.0}" y="{:.0}" class="legend">{}</text>"#,
            colour(i),
            lx + 14.0,
            ly + 9.0,
            escape(name)
        ));
        lx += w;
    }
    let top = ly + 26.0;
    let plot_h = 170.0;
    let height = top + plot_h + 40.0;
    let data_max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0_f64, f64::max);
    let (scale_max, auto_step) = match max {
        Some(m) => (m, None),
        None => {
            let step = nice_step(data_max * 1.1 / 4.0);
            (step * 4.0, Some(step))
        }
    };
    let tick_label = |v: f64| match auto_step {
        None => fmt(v),
        Some(step) if step >= 1.0 => format!("{v:.0}"),
        Some(step) if step >= 0.1 => format!("{v:.1}"),
        Some(_) => format!("{v:.2}"),
    };
    let y = |v: f64| top + plot_h - (v / scale_max).clamp(0.0, 1.0) * plot_h;

    let mut s = format!(
        r#"<svg class="chart" id="{id}" xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" role="img" aria-label="{t}">"#,
        id = escape(id),
        t = escape(title)
    );
    s.push_str(&format!(
        r#"<text x="{left}" y="16" class="ctitle">{}</text>"#,
        escape(title)
    ));
    s.push_str(&legend.concat());
    // Grid and axis labels.
    for k in 0..=4 {
        let v = scale_max * f64::from(k) / 4.0;
        let gy = y(v);
        s.push_str(&format!(
            "<line x1=\"{left}\" x2=\"{:.0}\" y1=\"{gy:.1}\" y2=\"{gy:.1}\" class=\"grid\"/><text x=\"{:.0}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"end\">{}</text>",
            width - 8.0,
            left - 6.0,
            gy + 4.0,
            escape(&tick_label(v))
        ));
    }
    // Bars.
    for (g, label) in groups.iter().enumerate() {
        let gx = left + gap / 2.0 + group_w * g as f64;
        for (i, (name, values)) in series.iter().enumerate() {
            let v = values.get(g).copied().unwrap_or(0.0);
            let x = gx + bar_w * i as f64;
            let top_y = y(v);
            s.push_str(&format!(
                r#"<rect class="bar" x="{x:.1}" y="{top_y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}</title></rect>"#,
                bar_w - 3.0,
                (top + plot_h - top_y).max(0.0),
                colour(i),
                escape(&format!("{name} · {label}: {}", fmt(v)))
            ));
            s.push_str(&format!(
                r#"<text x="{:.1}" y="{:.1}" class="val" text-anchor="middle">{}</text>"#,
                x + (bar_w - 3.0) / 2.0,
                top_y - 3.0,
                escape(&fmt(v))
            ));
        }
        s.push_str(&format!(
            r#"<text x="{:.1}" y="{:.1}" class="glabel" text-anchor="middle">{}</text>"#,
            gx + bar_w * series.len() as f64 / 2.0,
            top + plot_h + 18.0,
            escape(label)
        ));
    }
    s.push_str(&format!(
        "<line x1=\"{left}\" x2=\"{:.0}\" y1=\"{:.1}\" y2=\"{:.1}\" class=\"axis\"/>",
        width - 8.0,
        top + plot_h,
        top + plot_h
    ));
    s.push_str("</svg>");
    s
}

/// The smallest of 1, 2, 2.5, 5 (times a power of ten) that is at least
/// `raw`; 1 for non-positive input (an all-zero chart still gets an axis).
pub fn nice_step(raw: f64) -> f64 {
    if raw.is_nan() || raw <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|v| *v >= raw * (1.0 - 1e-12))
        .unwrap_or(10.0 * mag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bar_per_model_and_group_scaled_to_max() {
        let svg = grouped_bars(
            "c",
            "pass <rate>",
            &["easy".into(), "hard".into()],
            &[
                ("a&b".into(), vec![1.0, 0.5]),
                ("c".into(), vec![0.0, 0.25]),
            ],
            Some(1.0),
            &|v| format!("{:.0}%", v * 100.0),
        );
        assert_eq!(svg.matches("class=\"bar\"").count(), 4);
        assert!(svg.contains("pass &lt;rate&gt;"));
        assert!(svg.contains("a&amp;b · easy: 100%"));
        // Full-height bar: plot height 170.
        assert!(svg.contains("height=\"170.0\" fill=\"#4e79a7\""), "{svg}");
        assert!(!svg.contains("<script"));
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(0.55), 1.0);
        assert_eq!(nice_step(3394.0), 5000.0);
        assert_eq!(nice_step(0.2), 0.2);
        assert_eq!(nice_step(0.0), 1.0);
        assert_eq!(nice_step(2.2), 2.5);
    }
}
