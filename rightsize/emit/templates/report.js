(function(){
  function val(td){var v=td.getAttribute('data-v');if(v!==null&&v!==''){var f=parseFloat(v);if(!isNaN(f))return f;}
    return td.textContent.trim().toLowerCase();}
  // rows are <tr> in one <tbody>, or one <tbody class="item"> per row when it has an expandable detail row
  function groups(t){var items=t.querySelectorAll('tbody.item');
    return items.length?Array.prototype.slice.call(items):Array.prototype.slice.call(t.tBodies[0]?t.tBodies[0].rows:[]);}
  function mainRow(g){return g.tagName==='TBODY'?g.rows[0]:g;}
  document.querySelectorAll('table.sortable').forEach(function(t){
    t.querySelectorAll('thead th').forEach(function(th,i){th.addEventListener('click',function(){
      // the first click on a number column sorts largest first (the money that matters on top)
      var asc=th.classList.contains('desc')?true:th.classList.contains('asc')?false:!th.classList.contains('n');
      t.querySelectorAll('thead th').forEach(function(h){h.classList.remove('asc','desc');h.removeAttribute('aria-sort');});
      th.classList.add(asc?'asc':'desc');th.setAttribute('aria-sort',asc?'ascending':'descending');
      var gs=groups(t);var parent=gs.length?gs[0].parentNode:null;
      gs.sort(function(a,b){var x=val(mainRow(a).cells[i]),y=val(mainRow(b).cells[i]);
        if(typeof x!==typeof y){if(typeof x==='number')return -1;if(typeof y==='number')return 1;}
        return (x<y?-1:x>y?1:0)*(asc?1:-1);});
      gs.forEach(function(g){parent.appendChild(g);});});});});
  document.querySelectorAll('button.toggle').forEach(function(b){b.addEventListener('click',function(){
    var d=document.getElementById(b.getAttribute('aria-controls'));var open=b.getAttribute('aria-expanded')!=='true';
    b.setAttribute('aria-expanded',open?'true':'false');if(d)d.hidden=!open;});});
  document.querySelectorAll('.filters').forEach(function(box){
    var t=document.getElementById(box.getAttribute('data-table'));if(!t||t.classList.contains('paged'))return;
    var count=box.querySelector('.count');
    function apply(){var q=(box.querySelector('input')||{value:''}).value.toLowerCase();var shown=0;var gs=groups(t);
      gs.forEach(function(g){var ok=!q||mainRow(g).textContent.toLowerCase().indexOf(q)>=0;
        box.querySelectorAll('select').forEach(function(s){if(s.value&&g.getAttribute('data-'+s.getAttribute('data-attr'))!==s.value)ok=false;});
        g.style.display=ok?'':'none';if(ok)shown++;});
      if(count)count.textContent=shown+' of '+gs.length+' rows';}
    box.querySelectorAll('input,select').forEach(function(e){e.addEventListener('input',apply);e.addEventListener('change',apply);});
    apply();});
  // Long tables: rows embedded as gzip+base64 JSON, decoded by the browser, drawn a page at a time.
  // Every value is set as text (textContent), never parsed as markup: names are data.
  var PAGE=100;
  function el(tag,cls,text){var e=document.createElement(tag);if(cls)e.className=cls;if(text!==undefined)e.textContent=text;return e;}
  function cellTd(col,c){var td=el('td',[col.n?'n':'',col.cls,c[2]].filter(Boolean).join(' '));
    if(c[1]!==null&&c[1]!==undefined)td.setAttribute('data-v',c[1]);
    if(c[3]){td.appendChild(el('code','',c[0]));c[4].forEach(function(t){td.appendChild(document.createTextNode(' '));td.appendChild(el('span','tag '+t,t.replace(/_/g,' ')));});}
    else if(c[4].length){td.appendChild(el('span','tag '+c[4][0],c[0]));}
    else td.textContent=c[0];
    return td;}
  function paged(t,data){
    var rows=data.rows,cols=Array.prototype.map.call(t.tHead.rows[0].cells,function(th){
      return {n:th.classList.contains('n'),cls:['cpu-limit','text'].filter(function(k){return th.classList.contains(k);}).join(' ')};});
    var box=document.querySelector('.filters[data-table="'+t.id+'"]'),pager=document.querySelector('.pager[data-table="'+t.id+'"]');
    var shown=rows.slice(),page=0,expandable=t.classList.contains('expandable');
    function draw(){var old=t.tBodies;while(old.length)t.removeChild(old[0]);
      var pages=Math.max(1,Math.ceil(shown.length/PAGE));page=Math.min(page,pages-1);
      shown.slice(page*PAGE,(page+1)*PAGE).forEach(function(r,i){var body=el('tbody',expandable?'item':'');var tr=el('tr');
        Object.keys(r.a).forEach(function(k){body.setAttribute('data-'+k,r.a[k]);});
        r.c.forEach(function(c,j){var td=cellTd(cols[j]||{},c);
          if(j===0&&expandable){var id=t.id+'-'+(page*PAGE+i+1),b=el('button','toggle','\u25b8');b.type='button';
            b.setAttribute('aria-expanded','false');b.setAttribute('aria-controls',id);b.title='reason and evidence';
            b.addEventListener('click',function(){var d=document.getElementById(id),open=b.getAttribute('aria-expanded')!=='true';
              b.setAttribute('aria-expanded',open?'true':'false');if(d)d.hidden=!open;});td.insertBefore(b,td.firstChild);}
          tr.appendChild(td);});
        body.appendChild(tr);
        if(expandable){var d=el('tr','detail');d.id=t.id+'-'+(page*PAGE+i+1);d.hidden=true;var td=el('td');td.colSpan=cols.length;
          var dl=el('dl');r.d.forEach(function(p){dl.appendChild(el('dt','',p[0]));dl.appendChild(el('dd','',p[1]));});
          td.appendChild(dl);d.appendChild(td);body.appendChild(d);}
        t.appendChild(body);});
      if(pager){pager.textContent='';var prev=el('button','','\u2039 previous'),next=el('button','','next \u203a');
        prev.type=next.type='button';prev.disabled=page===0;next.disabled=page>=pages-1;
        prev.addEventListener('click',function(){page--;draw();});next.addEventListener('click',function(){page++;draw();});
        pager.appendChild(prev);pager.appendChild(el('span','muted',' page '+(page+1)+' of '+pages+' ('+shown.length+' of '+rows.length+' rows) '));
        pager.appendChild(next);}
      var count=box&&box.querySelector('.count');if(count)count.textContent=shown.length+' of '+rows.length+' rows';}
    function filter(){var q=box?((box.querySelector('input')||{value:''}).value.toLowerCase()):'';
      var sel=box?Array.prototype.slice.call(box.querySelectorAll('select')):[];
      shown=rows.filter(function(r){if(q&&r.c.map(function(c){return c[0];}).join(' ').toLowerCase().indexOf(q)<0)return false;
        return sel.every(function(s){return !s.value||r.a[s.getAttribute('data-attr')]===s.value;});});
      page=0;draw();}
    Array.prototype.forEach.call(t.tHead.rows[0].cells,function(th,i){th.addEventListener('click',function(){
      var asc=th.classList.contains('desc')?true:th.classList.contains('asc')?false:!th.classList.contains('n');
      Array.prototype.forEach.call(t.tHead.rows[0].cells,function(h){h.classList.remove('asc','desc');h.removeAttribute('aria-sort');});
      th.classList.add(asc?'asc':'desc');th.setAttribute('aria-sort',asc?'ascending':'descending');
      function key(r){var c=r.c[i];return (c[1]!==null&&c[1]!==undefined)?c[1]:c[0].toLowerCase();}
      shown.sort(function(a,b){var x=key(a),y=key(b);if(typeof x!==typeof y)return typeof x==='number'?-1:1;
        return (x<y?-1:x>y?1:0)*(asc?1:-1);});page=0;draw();});});
    if(box)box.querySelectorAll('input,select').forEach(function(e){e.addEventListener('input',filter);e.addEventListener('change',filter);});
    draw();t.setAttribute('data-ready',rows.length);}
  var pending=document.querySelectorAll('table.paged').length;
  document.querySelectorAll('table.paged').forEach(function(t){
    var src=document.getElementById(t.id+'-data');
    function done(){pending--;if(!pending)document.dispatchEvent(new Event('rightsize-tables-ready'));}
    if(!src||typeof DecompressionStream==='undefined'){done();return;}
    var bin=atob(src.textContent.trim()),bytes=new Uint8Array(bin.length);
    for(var i=0;i<bin.length;i++)bytes[i]=bin.charCodeAt(i);
    new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'))).text()
      .then(function(text){paged(t,JSON.parse(text));}).then(done,done);});
  window.rightsizeTablesPending=function(){return pending;};
})();
