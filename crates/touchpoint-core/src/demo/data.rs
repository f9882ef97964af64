//! Static reference data for the demo generator: brands, product templates,
//! names, provinces and stores. Plain tables, no logic.

/// A brand of the demo group.
pub(super) struct Brand {
    /// Brand name as written on products and in Shopify's Vendor column.
    pub name: &'static str,
    /// Letter used in SKUs (`SKU-A-0001`).
    pub code: char,
    /// Tmall flagship store name.
    pub tmall_store: &'static str,
    /// Tmall shop id.
    pub tmall_shop_id: &'static str,
    /// Share of people whose favourite brand this is.
    pub weight: f64,
    /// Probability that a person who prefers this brand is female.
    pub female: f64,
}

pub(super) const BRANDS: [Brand; 3] = [
    Brand {
        name: "青岚",
        code: 'A',
        tmall_store: "青岚官方旗舰店",
        tmall_shop_id: "583920117",
        weight: 0.45,
        female: 0.86,
    },
    Brand {
        name: "山茶集",
        code: 'B',
        tmall_store: "山茶集旗舰店",
        tmall_shop_id: "612047385",
        weight: 0.30,
        female: 0.48,
    },
    Brand {
        name: "洁屋",
        code: 'C',
        tmall_store: "洁屋家居旗舰店",
        tmall_shop_id: "647551902",
        weight: 0.25,
        female: 0.66,
    },
];

/// Skincare actives (brand A).
pub(super) const SKIN_ACTIVES: [&str; 12] = [
    "玻尿酸补水",
    "烟酰胺亮肤",
    "积雪草舒缓",
    "神经酰胺修护",
    "维C焕亮",
    "视黄醇抗老",
    "水杨酸净痘",
    "胶原蛋白紧致",
    "山茶花保湿",
    "氨基酸温和",
    "二裂酵母修护",
    "虾青素抗氧",
];

/// Skincare product types: (type, size, category, low price, high price) in yuan.
pub(super) const SKIN_TYPES: [(&str, &str, &str, i64, i64); 8] = [
    ("精华液", "30ml", "精华", 199, 399),
    ("面霜", "50g", "面霜", 169, 329),
    ("爽肤水", "150ml", "化妆水", 99, 189),
    ("乳液", "120ml", "乳液", 119, 219),
    ("洁面乳", "120g", "洁面", 59, 119),
    ("面膜", "5片装", "面膜", 69, 129),
    ("眼霜", "15g", "眼霜", 189, 359),
    ("防晒乳 SPF50+", "50ml", "防晒", 99, 179),
];

/// Teas (brand B): (name, category).
pub(super) const TEAS: [(&str, &str); 14] = [
    ("西湖龙井", "绿茶"),
    ("碧螺春", "绿茶"),
    ("黄山毛峰", "绿茶"),
    ("六安瓜片", "绿茶"),
    ("信阳毛尖", "绿茶"),
    ("安溪铁观音", "乌龙茶"),
    ("武夷大红袍", "乌龙茶"),
    ("凤凰单丛", "乌龙茶"),
    ("正山小种", "红茶"),
    ("滇红金芽", "红茶"),
    ("云南普洱熟茶", "黑茶"),
    ("福鼎白毫银针", "白茶"),
    ("白牡丹", "白茶"),
    ("茉莉花茶", "花茶"),
];

/// Teaware (brand B): (name, low, high).
pub(super) const TEAWARE: [(&str, i64, i64); 12] = [
    ("白瓷盖碗 150ml", 59, 129),
    ("玻璃公道杯 300ml", 39, 79),
    ("便携旅行茶具套装", 129, 259),
    ("紫砂壶 200ml", 299, 699),
    ("建盏茶杯", 89, 199),
    ("竹制茶盘", 159, 329),
    ("冷泡茶壶 1L", 59, 99),
    ("锡制茶叶罐", 199, 399),
    ("茶道六君子", 49, 99),
    ("玻璃飘逸杯", 69, 129),
    ("汝窑品茗杯 两只装", 79, 159),
    ("粗陶茶洗", 49, 89),
];

/// Household products (brand C): (name, size, category, low, high, scented).
pub(super) const HOUSEHOLD: [(&str, &str, &str, i64, i64, bool); 11] = [
    ("洗衣液", "2kg", "衣物清洁", 39, 79, true),
    ("洗洁精", "1kg", "厨房清洁", 19, 39, true),
    ("除菌喷雾", "500ml", "家居清洁", 29, 59, true),
    ("柔顺剂", "1L", "衣物清洁", 29, 59, true),
    ("厨房重油污清洁剂", "500ml", "厨房清洁", 25, 45, true),
    ("马桶清洁剂", "500ml", "家居清洁", 19, 35, true),
    ("泡沫洗手液", "300ml", "个人清洁", 25, 49, true),
    ("地板清洁剂", "1L", "家居清洁", 35, 59, true),
    ("衣物除菌液", "1L", "衣物清洁", 45, 79, true),
    ("香薰蜡烛", "200g", "香薰", 89, 169, false),
    ("无火香薰", "150ml", "香薰", 79, 149, false),
];

/// Household scents.
pub(super) const SCENTS: [&str; 6] = ["柠檬", "薰衣草", "白茶", "海盐", "樱花", "无香"];

/// Common surnames with pinyin, most common first.
pub(super) const SURNAMES: [(&str, &str); 50] = [
    ("王", "wang"),
    ("李", "li"),
    ("张", "zhang"),
    ("刘", "liu"),
    ("陈", "chen"),
    ("杨", "yang"),
    ("黄", "huang"),
    ("赵", "zhao"),
    ("吴", "wu"),
    ("周", "zhou"),
    ("徐", "xu"),
    ("孙", "sun"),
    ("马", "ma"),
    ("朱", "zhu"),
    ("胡", "hu"),
    ("郭", "guo"),
    ("何", "he"),
    ("林", "lin"),
    ("罗", "luo"),
    ("高", "gao"),
    ("郑", "zheng"),
    ("梁", "liang"),
    ("谢", "xie"),
    ("宋", "song"),
    ("唐", "tang"),
    ("许", "xu"),
    ("韩", "han"),
    ("冯", "feng"),
    ("邓", "deng"),
    ("曹", "cao"),
    ("彭", "peng"),
    ("曾", "zeng"),
    ("肖", "xiao"),
    ("田", "tian"),
    ("董", "dong"),
    ("潘", "pan"),
    ("袁", "yuan"),
    ("蔡", "cai"),
    ("蒋", "jiang"),
    ("余", "yu"),
    ("于", "yu"),
    ("杜", "du"),
    ("叶", "ye"),
    ("程", "cheng"),
    ("魏", "wei"),
    ("苏", "su"),
    ("吕", "lv"),
    ("丁", "ding"),
    ("沈", "shen"),
    ("任", "ren"),
];

/// Given-name characters often used for women, with pinyin.
pub(super) const GIVEN_F: [(&str, &str); 32] = [
    ("婷", "ting"),
    ("静", "jing"),
    ("敏", "min"),
    ("丽", "li"),
    ("娜", "na"),
    ("芳", "fang"),
    ("雪", "xue"),
    ("琳", "lin"),
    ("颖", "ying"),
    ("欣", "xin"),
    ("怡", "yi"),
    ("佳", "jia"),
    ("慧", "hui"),
    ("晓", "xiao"),
    ("雨", "yu"),
    ("梦", "meng"),
    ("思", "si"),
    ("悦", "yue"),
    ("晶", "jing"),
    ("倩", "qian"),
    ("萍", "ping"),
    ("燕", "yan"),
    ("玲", "ling"),
    ("洁", "jie"),
    ("瑶", "yao"),
    ("诗", "shi"),
    ("涵", "han"),
    ("可", "ke"),
    ("馨", "xin"),
    ("蕾", "lei"),
    ("文", "wen"),
    ("月", "yue"),
];

/// Given-name characters often used for men, with pinyin.
pub(super) const GIVEN_M: [(&str, &str); 32] = [
    ("伟", "wei"),
    ("强", "qiang"),
    ("磊", "lei"),
    ("军", "jun"),
    ("洋", "yang"),
    ("勇", "yong"),
    ("杰", "jie"),
    ("涛", "tao"),
    ("明", "ming"),
    ("超", "chao"),
    ("浩", "hao"),
    ("宇", "yu"),
    ("鹏", "peng"),
    ("俊", "jun"),
    ("斌", "bin"),
    ("峰", "feng"),
    ("辉", "hui"),
    ("翔", "xiang"),
    ("晨", "chen"),
    ("博", "bo"),
    ("文", "wen"),
    ("凯", "kai"),
    ("志", "zhi"),
    ("建", "jian"),
    ("子", "zi"),
    ("轩", "xuan"),
    ("天", "tian"),
    ("昊", "hao"),
    ("然", "ran"),
    ("阳", "yang"),
    ("小", "xiao"),
    ("一", "yi"),
];

/// Chinese nickname endings for Taobao buyer nicks.
pub(super) const NICK_SUFFIX: [&str; 10] = [
    "爱喝茶",
    "的小店",
    "同学",
    "爱购物",
    "不吃香菜",
    "酱",
    "宝宝",
    "小可爱",
    "在杭州",
    "要早睡",
];

/// A province (or municipality) with a few cities.
pub(super) struct Province {
    /// Short name used in `region` (`浙江`, `上海`).
    pub short: &'static str,
    /// Name as written at the start of a Taobao address (`浙江省`, `上海`).
    pub full: &'static str,
    /// ISO 3166-2:CN subdivision code, as Shopify's province column writes it.
    pub code: &'static str,
    /// Pinyin name (Shopify province name).
    pub pinyin: &'static str,
    /// First three digits of postcodes.
    pub zip: &'static str,
    /// Relative share of customers.
    pub weight: f64,
    /// Cities: (name, pinyin, districts).
    pub cities: &'static [(&'static str, &'static str, &'static [&'static str])],
}

pub(super) const PROVINCES: [Province; 20] = [
    Province {
        short: "广东",
        full: "广东省",
        code: "GD",
        pinyin: "Guangdong",
        zip: "510",
        weight: 14.0,
        cities: &[
            (
                "广州市",
                "Guangzhou",
                &["天河区", "越秀区", "海珠区", "番禺区"],
            ),
            (
                "深圳市",
                "Shenzhen",
                &["南山区", "福田区", "宝安区", "龙岗区"],
            ),
            ("佛山市", "Foshan", &["禅城区", "南海区", "顺德区"]),
            ("东莞市", "Dongguan", &["南城街道", "东城街道", "松山湖"]),
        ],
    },
    Province {
        short: "浙江",
        full: "浙江省",
        code: "ZJ",
        pinyin: "Zhejiang",
        zip: "310",
        weight: 12.0,
        cities: &[
            (
                "杭州市",
                "Hangzhou",
                &["西湖区", "上城区", "拱墅区", "滨江区", "余杭区"],
            ),
            ("宁波市", "Ningbo", &["海曙区", "鄞州区", "江北区"]),
            ("温州市", "Wenzhou", &["鹿城区", "瓯海区"]),
        ],
    },
    Province {
        short: "江苏",
        full: "江苏省",
        code: "JS",
        pinyin: "Jiangsu",
        zip: "210",
        weight: 11.0,
        cities: &[
            (
                "南京市",
                "Nanjing",
                &["玄武区", "秦淮区", "鼓楼区", "建邺区"],
            ),
            ("苏州市", "Suzhou", &["姑苏区", "工业园区", "吴中区"]),
            ("无锡市", "Wuxi", &["梁溪区", "滨湖区"]),
        ],
    },
    Province {
        short: "上海",
        full: "上海",
        code: "SH",
        pinyin: "Shanghai",
        zip: "200",
        weight: 9.0,
        cities: &[(
            "上海市",
            "Shanghai",
            &["浦东新区", "徐汇区", "静安区", "黄浦区", "长宁区", "闵行区"],
        )],
    },
    Province {
        short: "北京",
        full: "北京",
        code: "BJ",
        pinyin: "Beijing",
        zip: "100",
        weight: 7.0,
        cities: &[(
            "北京市",
            "Beijing",
            &["朝阳区", "海淀区", "东城区", "西城区", "丰台区"],
        )],
    },
    Province {
        short: "山东",
        full: "山东省",
        code: "SD",
        pinyin: "Shandong",
        zip: "250",
        weight: 6.0,
        cities: &[
            ("济南市", "Jinan", &["历下区", "市中区"]),
            ("青岛市", "Qingdao", &["市南区", "崂山区", "黄岛区"]),
        ],
    },
    Province {
        short: "福建",
        full: "福建省",
        code: "FJ",
        pinyin: "Fujian",
        zip: "350",
        weight: 5.0,
        cities: &[
            ("福州市", "Fuzhou", &["鼓楼区", "台江区"]),
            ("厦门市", "Xiamen", &["思明区", "湖里区"]),
        ],
    },
    Province {
        short: "四川",
        full: "四川省",
        code: "SC",
        pinyin: "Sichuan",
        zip: "610",
        weight: 5.0,
        cities: &[
            (
                "成都市",
                "Chengdu",
                &["锦江区", "武侯区", "高新区", "青羊区"],
            ),
            ("绵阳市", "Mianyang", &["涪城区"]),
        ],
    },
    Province {
        short: "湖北",
        full: "湖北省",
        code: "HB",
        pinyin: "Hubei",
        zip: "430",
        weight: 4.0,
        cities: &[("武汉市", "Wuhan", &["武昌区", "江汉区", "洪山区"])],
    },
    Province {
        short: "河南",
        full: "河南省",
        code: "HA",
        pinyin: "Henan",
        zip: "450",
        weight: 4.0,
        cities: &[("郑州市", "Zhengzhou", &["金水区", "二七区"])],
    },
    Province {
        short: "湖南",
        full: "湖南省",
        code: "HN",
        pinyin: "Hunan",
        zip: "410",
        weight: 3.0,
        cities: &[("长沙市", "Changsha", &["岳麓区", "芙蓉区", "天心区"])],
    },
    Province {
        short: "安徽",
        full: "安徽省",
        code: "AH",
        pinyin: "Anhui",
        zip: "230",
        weight: 3.0,
        cities: &[("合肥市", "Hefei", &["蜀山区", "包河区"])],
    },
    Province {
        short: "天津",
        full: "天津",
        code: "TJ",
        pinyin: "Tianjin",
        zip: "300",
        weight: 2.0,
        cities: &[("天津市", "Tianjin", &["和平区", "南开区", "河西区"])],
    },
    Province {
        short: "重庆",
        full: "重庆",
        code: "CQ",
        pinyin: "Chongqing",
        zip: "400",
        weight: 3.0,
        cities: &[("重庆市", "Chongqing", &["渝中区", "江北区", "南岸区"])],
    },
    Province {
        short: "陕西",
        full: "陕西省",
        code: "SN",
        pinyin: "Shaanxi",
        zip: "710",
        weight: 2.0,
        cities: &[("西安市", "Xi'an", &["雁塔区", "碑林区"])],
    },
    Province {
        short: "辽宁",
        full: "辽宁省",
        code: "LN",
        pinyin: "Liaoning",
        zip: "110",
        weight: 2.0,
        cities: &[
            ("沈阳市", "Shenyang", &["和平区", "沈河区"]),
            ("大连市", "Dalian", &["中山区", "沙河口区"]),
        ],
    },
    Province {
        short: "河北",
        full: "河北省",
        code: "HE",
        pinyin: "Hebei",
        zip: "050",
        weight: 3.0,
        cities: &[("石家庄市", "Shijiazhuang", &["长安区", "桥西区"])],
    },
    Province {
        short: "江西",
        full: "江西省",
        code: "JX",
        pinyin: "Jiangxi",
        zip: "330",
        weight: 2.0,
        cities: &[("南昌市", "Nanchang", &["东湖区", "红谷滩区"])],
    },
    Province {
        short: "广西",
        full: "广西壮族自治区",
        code: "GX",
        pinyin: "Guangxi",
        zip: "530",
        weight: 2.0,
        cities: &[("南宁市", "Nanning", &["青秀区", "西乡塘区"])],
    },
    Province {
        short: "云南",
        full: "云南省",
        code: "YN",
        pinyin: "Yunnan",
        zip: "650",
        weight: 2.0,
        cities: &[("昆明市", "Kunming", &["五华区", "盘龙区"])],
    },
];

/// Roads used in street addresses.
pub(super) const ROADS: [&str; 16] = [
    "中山路",
    "人民路",
    "解放路",
    "建设路",
    "和平路",
    "文三路",
    "南京路",
    "长江路",
    "滨江大道",
    "学院路",
    "新华路",
    "延安路",
    "凤起路",
    "天目山路",
    "科技园路",
    "东风路",
];

/// Residential compounds used in street addresses.
pub(super) const COMPOUNDS: [&str; 10] = [
    "阳光花园",
    "锦绣苑",
    "翠湖小区",
    "世纪城",
    "绿地公寓",
    "万科城",
    "金色家园",
    "名都嘉园",
    "星河湾",
    "华润中央公园",
];

/// A physical store: (code, name, province index into PROVINCES, city index, weight).
pub(super) struct Store {
    /// Store code used in POS order ids.
    pub code: &'static str,
    /// Index into [`PROVINCES`].
    pub province: usize,
    /// Index into that province's cities.
    pub city: usize,
    /// Relative share of POS customers.
    pub weight: f64,
}

pub(super) const STORES: [Store; 9] = [
    Store {
        code: "S01",
        province: 3,
        city: 0,
        weight: 3.0,
    },
    Store {
        code: "S02",
        province: 3,
        city: 0,
        weight: 2.0,
    },
    Store {
        code: "S03",
        province: 1,
        city: 0,
        weight: 2.5,
    },
    Store {
        code: "S04",
        province: 2,
        city: 0,
        weight: 1.5,
    },
    Store {
        code: "S05",
        province: 2,
        city: 1,
        weight: 1.0,
    },
    Store {
        code: "S06",
        province: 0,
        city: 0,
        weight: 2.0,
    },
    Store {
        code: "S07",
        province: 0,
        city: 1,
        weight: 2.0,
    },
    Store {
        code: "S08",
        province: 4,
        city: 0,
        weight: 2.0,
    },
    Store {
        code: "S09",
        province: 7,
        city: 0,
        weight: 1.5,
    },
];

/// Stores whose counter phone is typed in for walk-in customers, with how the
/// number is written: (store index, area prefix as written, digits to draw
/// after the prefix). A prefix of `1` means a mobile number.
pub(super) const COUNTERS: [(usize, &str, usize); 3] =
    [(0, "021-5", 7), (2, "0571-8", 7), (6, "139", 8)];

/// Email domains with weights.
pub(super) const EMAIL_DOMAINS: [(&str, f64); 8] = [
    ("qq.com", 40.0),
    ("163.com", 22.0),
    ("126.com", 6.0),
    ("gmail.com", 10.0),
    ("outlook.com", 5.0),
    ("foxmail.com", 5.0),
    ("sina.com", 4.0),
    ("hotmail.com", 3.0),
];

/// Shopify column header, in order.
pub(super) const SHOPIFY_HEADER: [&str; 79] = crate::ingest::shopify::COLUMNS;

/// Taobao order report header, in order.
pub(super) const TAOBAO_HEADER: [&str; 49] = crate::ingest::taobao::COLUMNS;

/// Canonical column names, in order.
pub(super) const CANONICAL_COLUMNS: [&str; 24] = [
    "channel",
    "order_id",
    "ordered_at",
    "paid_at",
    "status",
    "currency",
    "sku",
    "product_name",
    "brand",
    "category",
    "quantity",
    "unit_price",
    "unit_cost",
    "discount",
    "refunded",
    "member_no",
    "phone",
    "email",
    "platform_user_id",
    "wechat_unionid",
    "name",
    "gender",
    "birthday",
    "region",
];
