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
    var t=document.getElementById(box.getAttribute('data-table'));if(!t)return;
    var count=box.querySelector('.count');
    function apply(){var q=(box.querySelector('input')||{value:''}).value.toLowerCase();var shown=0;var gs=groups(t);
      gs.forEach(function(g){var ok=!q||mainRow(g).textContent.toLowerCase().indexOf(q)>=0;
        box.querySelectorAll('select').forEach(function(s){if(s.value&&g.getAttribute('data-'+s.getAttribute('data-attr'))!==s.value)ok=false;});
        g.style.display=ok?'':'none';if(ok)shown++;});
      if(count)count.textContent=shown+' of '+gs.length+' rows';}
    box.querySelectorAll('input,select').forEach(function(e){e.addEventListener('input',apply);e.addEventListener('change',apply);});
    apply();});
})();
